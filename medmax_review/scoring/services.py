"""Pre-scoring: run the scorers over candidates, store scores and queue priority, auto-reject."""

from collections.abc import Callable

from django.db import transaction
from django.db.models import Case, FloatField, Value, When
from django.utils import timezone

from medmax_review.core.medmax import IMAGE_NONE
from medmax_review.review.models import PENDING, REJECT, REJECTED, Candidate, Decision, ReviewSlot
from medmax_review.scoring.scorers.base import ScoreInput, ScoreResult
from medmax_review.scoring.scorers.format import score_format
from medmax_review.scoring.scorers.phi import score_phi

BATCH_SIZE = 500

# Scorers that need nothing but the candidate's and its record's text.
TEXT_SCORERS: list[Callable[[ScoreInput], ScoreResult]] = [score_phi, score_format]

# The reject reason recorded when a score falls under the project's threshold.
REJECT_REASON_FOR = {
    "grounding": "hallucination",
    "consistency": "hallucination",
    "phi": "phi",
    "format": "formatting",
    "image": "poor_image",
    "near_duplicate": "duplicate",
    "llm_judge": "hallucination",
}


def score_input_for(candidate: Candidate) -> ScoreInput:
    record = candidate.record
    return ScoreInput(
        instruction=candidate.instruction,
        context=candidate.context,
        response=candidate.response,
        task=candidate.task,
        image_position=candidate.image_position,
        caption=record.caption,
        inline_mention=record.inline_mention,
        question=record.question,
        answer=record.answer,
        report=record.report,
        modality=record.modality or (record.image.modality if record.image_id else ""),
        has_image=candidate.image_position != IMAGE_NONE and record.image_id is not None,
    )


def priority_for(scores: dict) -> float:
    """Review-queue priority, higher = sooner.

    priority = 0.7 * (1 - worst score) + 0.3 * mean uncertainty, where a score's uncertainty is
    1 - |2v - 1| (1 at v = 0.5, 0 at v = 0 or 1). A candidate with any failed check comes
    first; among clean ones, those with middling (uncertain) scores come before the sure ones.
    """
    values = [s["value"] for s in scores.values()]
    if not values:
        return 0.0
    worst = min(values)
    uncertainty = sum(1 - abs(2 * v - 1) for v in values) / len(values)
    return round(0.7 * (1 - worst) + 0.3 * uncertainty, 4)


def candidate_scores_compute(*, item: ScoreInput) -> dict:
    return {result.name: result.as_dict() for result in (scorer(item) for scorer in TEXT_SCORERS)}


def candidates_score(*, candidate_ids: list[int]) -> int:
    """Score these candidates; returns how many were scored. Running it twice changes nothing."""
    ids = sorted(set(candidate_ids))
    scored = 0
    for start in range(0, len(ids), BATCH_SIZE):
        batch = list(
            Candidate.objects.filter(id__in=ids[start : start + BATCH_SIZE])
            .select_related("record", "record__image", "project")
            .order_by("id")
        )
        _score_batch(batch)
        scored += len(batch)
    return scored


def _score_batch(batch: list[Candidate]) -> None:
    changed = []
    for candidate in batch:
        scores = candidate_scores_compute(item=score_input_for(candidate))
        priority = priority_for(scores)
        if scores != candidate.scores or priority != candidate.priority:
            candidate.scores, candidate.priority = scores, priority
            changed.append(candidate)
    with transaction.atomic():
        if changed:
            Candidate.objects.bulk_update(changed, ["scores", "priority"])
            ReviewSlot.objects.filter(
                candidate_id__in=[c.id for c in changed], state=ReviewSlot.OPEN
            ).update(priority=Case(
                *[When(candidate_id=c.id, then=Value(c.priority)) for c in changed],
                output_field=FloatField(),
            ))
        _auto_reject(batch)


def _threshold_breach(candidate: Candidate) -> tuple[str, float, float] | None:
    """(score name, value, threshold) of the first score under the project's threshold."""
    for name, threshold in sorted((candidate.project.auto_reject_thresholds or {}).items()):
        score = candidate.scores.get(name)
        if score is not None and score["value"] < float(threshold):
            return name, score["value"], float(threshold)
    return None


def _auto_reject(batch: list[Candidate]) -> None:
    breaches = {c.id: b for c in batch if c.status == PENDING and (b := _threshold_breach(c))}
    if not breaches:
        return
    decided = set(
        Decision.objects.filter(candidate_id__in=breaches).values_list("candidate_id", flat=True)
    )
    now = timezone.now()
    for candidate_id, (name, value, threshold) in breaches.items():
        if candidate_id in decided:
            continue  # a human (or an earlier auto-reject) already decided: never overrule it
        # Only a candidate still pending is rejected; the conditional update makes a concurrent
        # run (or a reviewer's decision landing meanwhile) lose cleanly instead of doubling up.
        locked = Candidate.objects.select_for_update().filter(id=candidate_id, status=PENDING).first()
        if locked is None or locked.decisions.exists():
            continue
        Decision.objects.create(
            candidate=locked, reviewer=None, action=REJECT,
            reason=REJECT_REASON_FOR.get(name, "other"),
            system_note=f"auto-rejected: {name} score {value:.2f} is below the project's "
                        f"threshold {threshold:.2f}",
            candidate_version=locked.version,
        )
        Candidate.objects.filter(id=candidate_id).update(
            status=REJECTED, version=locked.version + 1, decided_at=now, updated_at=now,
        )
        ReviewSlot.objects.filter(candidate_id=candidate_id, state=ReviewSlot.OPEN).delete()
