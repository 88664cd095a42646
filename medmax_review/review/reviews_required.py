"""Applying a changed "reviews required" to the candidates already waiting for review.

Candidates get their slots when they are created, so a new setting reaches the waiting ones only
when an admin asks for it (the settings page offers it, with the count, after a change).
"""

from dataclasses import dataclass

from django.db import transaction

from medmax_review.projects.models import Project
from medmax_review.review.models import PENDING, Candidate, ReviewSlot
from medmax_review.review.queue import slots_create
from medmax_review.review.selectors import candidates_slots_off_target
from medmax_review.review.services import candidate_settle

BATCH = 500


@dataclass
class SlotChange:
    candidates: int = 0  # waiting candidates whose slots changed
    added: int = 0
    removed: int = 0
    settled: int = 0  # decided at once: every slot left was done


def candidates_reviews_required_apply(*, project: Project) -> SlotChange:
    """Give every waiting candidate the project's current number of review slots.

    Open slots are added, or removed highest index first (claimed and finished ones never are);
    a candidate whose remaining slots are all done is settled as if its last review had just
    come in. Runs in id batches, each in its own transaction.
    """
    change = SlotChange()
    last = 0
    while True:
        ids = list(
            candidates_slots_off_target(project=project).filter(id__gt=last).order_by("id")
            .values_list("id", flat=True)[:BATCH]
        )
        if not ids:
            return change
        last = ids[-1]
        _apply_batch(project=project, ids=ids, change=change)


@transaction.atomic
def _apply_batch(*, project: Project, ids: list[int], change: SlotChange) -> None:
    # The candidate locks serialise this with reviewers deciding (services._locked): no slot is
    # removed under a decision that is about to settle the candidate.
    candidates = list(
        Candidate.objects.select_for_update(of=("self",)).select_related("project")
        .filter(id__in=ids, status=PENDING).order_by("id")
    )
    required = project.reviews_required
    slots: dict[int, list[ReviewSlot]] = {c.pk: [] for c in candidates}
    for slot in ReviewSlot.objects.filter(candidate_id__in=slots).order_by("-index"):
        slots[slot.candidate_id].append(slot)
    surplus = [
        slot.pk
        for c in candidates
        for slot in [s for s in slots[c.pk] if s.state == ReviewSlot.OPEN][
            : max(len(slots[c.pk]) - required, 0)
        ]
    ]
    # Still open: a reviewer may have claimed one since it was read (claims lock the slot row,
    # not the candidate), and a claimed slot is never taken away.
    removed, _ = ReviewSlot.objects.filter(pk__in=surplus, state=ReviewSlot.OPEN).delete()
    change.removed += removed
    change.added += slots_create(project=project, candidates=candidates, required=required)
    for c in candidates:
        change.candidates += len(slots[c.pk]) != required
        if len(slots[c.pk]) > required:
            candidate_settle(candidate=c)
            change.settled += c.status != PENDING
