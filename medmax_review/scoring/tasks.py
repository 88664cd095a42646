from celery import shared_task

from medmax_review.scoring import services


# Late-acked and re-queued if the worker process dies (OOM killer, kill -9): scoring the same
# candidate twice gives the same scores.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def score_candidates(candidate_ids: list[int], llm_judge: bool = False) -> int:
    """Score (or re-score) these candidates; scoring the same candidate twice changes nothing."""
    return services.candidates_score(candidate_ids=candidate_ids, llm_judge=llm_judge)


@shared_task
def unscored_resend() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE): score what a lost message left unscored."""
    return services.unscored_resend()


@shared_task
def reject_models_refit() -> int:
    """Periodic (CELERY_BEAT_SCHEDULE): relearn each project's clinician reject risk."""
    from medmax_review.scoring import confidence

    return confidence.reject_models_refit()
