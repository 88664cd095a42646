"""Taking candidates out of the review queue and putting them back, slots kept in step.

A candidate is in the queue while it is pending, and reviewers work on its ReviewSlot rows. Every
path that moves a candidate out of pending (a settled review, a flag, an adjudication, a system
or bulk rejection) goes through `candidates_dequeue`, and every path that brings one back (undo,
re-queue, overturning an automatic rejection) through `candidates_requeue`. So no slot stays
open or claimed on a candidate nobody may review, and a returning candidate gets its slots back.

Callers hold the candidates' row locks (select_for_update) and run inside their transaction.
"""

from collections import defaultdict
from collections.abc import Collection, Iterable
from itertools import count

from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from medmax_review.projects.models import Project
from medmax_review.review.models import PENDING, REJECT, REJECTED, Candidate, Decision, ReviewSlot


def slots_create(*, project: Project, candidates: Iterable[Candidate], required: int | None = None) -> int:
    """Top each candidate up to `required` review slots (default: the project's setting).

    Slots it already has count, in any state: a returning candidate keeps its finished reviews
    and gains only the missing slots. Returns how many were added; ignore_conflicts makes two
    runs adding the same index at once create one slot.
    """
    required = project.reviews_required if required is None else required
    candidates = list(candidates)
    taken: dict[int, set[int]] = defaultdict(set)
    for candidate_id, index in ReviewSlot.objects.filter(
        candidate_id__in=[c.pk for c in candidates]
    ).values_list("candidate_id", "index"):
        taken[candidate_id].add(index)
    fresh = []
    for c in candidates:
        free = (i for i in count() if i not in taken[c.pk])
        fresh += [
            ReviewSlot(candidate=c, project=project, index=next(free), priority=c.priority,
                       risk=slot_risk(c), credential=c.credential)
            for _ in range(required - len(taken[c.pk]))
        ]
    ReviewSlot.objects.bulk_create(fresh, batch_size=1000, ignore_conflicts=True)
    return len(fresh)


def slot_risk(candidate: Candidate) -> float:
    return -1.0 if candidate.reject_risk is None else candidate.reject_risk


def slots_order_sync(*, candidates: Collection[Candidate]) -> int:
    """Copy the candidates' saved queue order (priority and reject risk) onto their open slots
    that lag it: slots just re-scored, and any opened since with values copied before. One
    statement, whatever the number of candidates."""
    ids = [c.pk for c in candidates]
    if not ids:
        return 0
    own = Candidate.objects.filter(pk=OuterRef("candidate_id"))
    return (
        ReviewSlot.objects.filter(candidate_id__in=ids, state=ReviewSlot.OPEN)
        .exclude(priority=F("candidate__priority"), risk=Coalesce("candidate__reject_risk", -1.0))
        .update(priority=Subquery(own.values("priority")[:1]),
                risk=Subquery(own.values(r=Coalesce("reject_risk", -1.0))[:1]))
    )


def slots_close(*, candidate_ids: Collection[int]) -> int:
    """Delete the slots of these candidates that no review finished (open or claimed).

    A holder's next submission then meets a new candidate version and is told what changed;
    finished slots stay as the record of who reviewed.
    """
    deleted, _ = (
        ReviewSlot.objects.filter(candidate_id__in=candidate_ids).exclude(state=ReviewSlot.DONE).delete()
    )
    return deleted


def candidates_dequeue(*, candidate_ids: Collection[int], status: str, **fields) -> int:
    """Give the candidates a status nobody reviews in, and close their unfinished slots.

    `fields` are written in the same update (decided_at, an adjudicator's chosen text).
    """
    if status == PENDING:
        raise ValueError("status: a pending candidate is in the queue; use candidates_requeue")
    changed = Candidate.objects.filter(id__in=candidate_ids).update(
        status=status, version=F("version") + 1, updated_at=timezone.now(), **fields
    )
    slots_close(candidate_ids=candidate_ids)
    return changed


def candidates_requeue(*, project: Project, candidates: Collection[Candidate], **fields) -> int:
    """Put the candidates back to pending (those not already) with their review slots topped up.

    `fields` are written with the status of those that change (texts an undo restores). A
    finished slot without a reviewer records no review (older data): it opens again.
    """
    ids = [c.pk for c in candidates]
    changed = Candidate.objects.filter(id__in=ids).exclude(status=PENDING).update(
        status=PENDING, decided_at=None, version=F("version") + 1, updated_at=timezone.now(),
        **fields,
    )
    ReviewSlot.objects.filter(
        candidate_id__in=ids, state=ReviewSlot.DONE, reviewer__isnull=True
    ).update(state=ReviewSlot.OPEN, done_at=None, claim_expires_at=None)
    slots_create(project=project, candidates=candidates)
    return changed


def candidates_system_reject(
    *, candidates: Collection[Candidate], note: str, reason: str = ""
) -> list[Decision]:
    """Reject without a reviewer (a score threshold), recorded as a system decision."""
    decisions = Decision.objects.bulk_create(
        [
            # The version the rejection was made against, as for reviewers' decisions.
            Decision(candidate=c, action=REJECT, reason=reason, system_note=note[:500],
                     candidate_version=c.version)
            for c in candidates
        ]
    )
    candidates_dequeue(
        candidate_ids=[c.pk for c in candidates], status=REJECTED, decided_at=timezone.now()
    )
    return decisions
