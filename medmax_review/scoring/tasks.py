from celery import shared_task

from medmax_review.scoring import services


@shared_task(acks_late=True)
def score_candidates(candidate_ids: list[int], llm_judge: bool = False) -> int:
    """Score (or re-score) these candidates; scoring the same candidate twice changes nothing."""
    return services.candidates_score(candidate_ids=candidate_ids, llm_judge=llm_judge)
