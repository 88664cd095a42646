"""Bulk actions over the candidates a browser filter selects: re-score, re-queue, reject below a
score threshold. Each walks the selection in id batches (a million rows never sit in memory or
in one transaction) and leaves one AuditEntry saying who did what to how many, with which filters.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from celery import current_app
from django.db import transaction
from django.db.models import FloatField, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from medmax_review.core.audit import audit_record
from medmax_review.core.models import AuditEvent
from medmax_review.projects.models import Project
from medmax_review.review.browse_selectors import (
    BrowseFilters,
    candidates_filtered,
    score_name_check,
)
from medmax_review.review.models import (
    ADJUDICATION,
    FLAGGED,
    GENERATION_ERROR,
    PENDING,
    AuditEntry,
    Candidate,
)
from medmax_review.review.queue import candidates_requeue, candidates_system_reject

RESCORE, REQUEUE, REJECT_BELOW = "rescore", "requeue", "reject_below"
BULK_ACTIONS = [
    (RESCORE, "Re-score"),
    (REQUEUE, "Re-queue for review"),
    (REJECT_BELOW, "Reject below a score threshold"),
]
BATCH = 500
SCORE_TASK = "medmax_review.scoring.tasks.score_candidates"
# Only undecided candidates are auto-rejected: a threshold never overrides a human approval.
REJECTABLE = (PENDING, FLAGGED, ADJUDICATION)


@dataclass(frozen=True)
class BulkRequest:
    action: str
    filters: BrowseFilters
    score_name: str = ""
    threshold: float | None = None

    def check(self) -> None:
        if self.action not in dict(BULK_ACTIONS):
            raise ValueError(f"action: {self.action!r} is not a bulk action")
        if self.action == REJECT_BELOW:
            if not self.score_name:
                raise ValueError("score: choose the score to compare with the threshold")
            score_name_check(self.score_name)
            if self.threshold is None:
                raise ValueError("threshold: give a number, e.g. 0.3")


def bulk_selection(*, project: Project, request: BulkRequest, user) -> QuerySet:
    """The candidates the action would touch: only those the user may read."""
    request.check()
    qs = candidates_filtered(project=project, filters=request.filters, user=user)
    if request.action == REQUEUE:
        # Failed generations have no usable text to review.
        qs = qs.exclude(status=GENERATION_ERROR)
    elif request.action == REJECT_BELOW:
        qs = qs.filter(status__in=REJECTABLE).alias(
            score_value=Cast(KT(f"scores__{request.score_name}__value"), FloatField())
        ).filter(score_value__lt=request.threshold)
    return qs


def bulk_count(*, project: Project, request: BulkRequest, user) -> int:
    """What the confirmation step shows."""
    return bulk_selection(project=project, request=request, user=user).count()


def _id_batches(qs: QuerySet) -> Iterator[list[int]]:
    """The ids of qs in ascending batches, by keyset on id (no OFFSET, no long transaction)."""
    last = 0
    while True:
        ids = list(qs.filter(id__gt=last).order_by("id").values_list("id", flat=True)[:BATCH])
        if not ids:
            return
        yield ids
        last = ids[-1]


def bulk_run(*, project: Project, user, request: BulkRequest) -> AuditEntry:
    """Apply the action and record it; returns the audit entry (details.count = touched).

    The entry is written first, so a run that dies half way still says who started what; its
    count is filled in at the end (None means it did not finish).
    """
    qs = bulk_selection(project=project, request=request, user=user)
    details = {"filters": request.filters.as_dict(), "count": None}
    if request.action == REJECT_BELOW:
        details.update({"score": request.score_name, "threshold": request.threshold})
    entry = AuditEntry.objects.create(
        project=project, user=user, action=f"bulk_{request.action}", details=details
    )
    run = {RESCORE: _rescore, REQUEUE: _requeue, REJECT_BELOW: _reject_below}[request.action]
    count = 0
    for ids in _id_batches(qs):
        count += run(project=project, user=user, request=request, ids=ids)
    entry.details["count"] = count
    entry.save(update_fields=["details"])
    audit_record(AuditEvent.BULK_ACTION, actor=user, project=project, target=request.action,
                 **entry.details)
    return entry


def _rescore(*, project, user, request, ids: list[int]) -> int:
    # By name: the web process need not import the scoring code to enqueue it.
    transaction.on_commit(lambda ids=ids: current_app.send_task(SCORE_TASK, args=[ids]))
    return len(ids)


@transaction.atomic
def _requeue(*, project, user, request, ids: list[int]) -> int:
    """Re-open: back to pending, with any missing review slots; earlier decisions stay."""
    # select_for_update: a reviewer deciding one of these meanwhile waits for this batch.
    candidates = list(Candidate.objects.select_for_update().filter(id__in=ids).order_by("id"))
    candidates_requeue(project=project, candidates=candidates)
    return len(candidates)


@transaction.atomic
def _reject_below(*, project, user, request, ids: list[int]) -> int:
    """System reject with a note; the slots not yet done go, so nobody reviews it needlessly."""
    # Re-check under the lock: a reviewer may have decided one since the selection was read.
    candidates = list(
        Candidate.objects.select_for_update()
        .filter(id__in=ids, status__in=REJECTABLE).order_by("id")
    )
    note = (
        f"bulk reject: {request.score_name} < {request.threshold:g}"
        f" (by {getattr(user, 'username', 'system')})"
    )
    candidates_system_reject(candidates=candidates, note=note)
    return len(candidates)
