"""Regeneration: new candidates, from another template version or model, for the source records
of candidates that were rejected, flagged or scored low.

Each new candidate points at the one it replaces (Candidate.regenerated_from); the old one is
not touched and keeps its decisions, so the rejection stays in the statistics and the history.
"""

from django.db import transaction
from django.db.models import QuerySet

from medmax_review.generation.models import GenerationJob, PromptTemplate
from medmax_review.generation.services import JobError, job_create
from medmax_review.projects.models import Project
from medmax_review.review.models import APPROVED, Candidate

# One launch at most; a larger selection is narrowed by a filter first.
MAX_CANDIDATES = 10_000


def regeneration_plan(*, candidates: QuerySet[Candidate],
                      template: PromptTemplate | None = None) -> dict[str, dict[int, int]]:
    """{task: {record id: the candidate to replace}} for the selection.

    Approved candidates are left out (nothing to replace); with a template, so are the other
    tasks' candidates (a template is for one task). Of several candidates of one record and
    task, the newest is the one replaced.
    """
    candidates = candidates.exclude(status=APPROVED)
    if template is not None:
        candidates = candidates.filter(task=template.task)
    rows = list(
        candidates.order_by("task", "record_id", "-id")
        .values_list("task", "record_id", "id")[: MAX_CANDIDATES + 1]
    )
    if len(rows) > MAX_CANDIDATES:
        raise JobError(f"candidates: more than {MAX_CANDIDATES:,}; narrow the selection")
    plan: dict[str, dict[int, int]] = {}
    for task, record_id, candidate_id in rows:
        plan.setdefault(task, {}).setdefault(record_id, candidate_id)
    return plan


def regeneration_launch(
    *, project: Project, candidates: QuerySet[Candidate], backend: str, model: str = "",
    template: PromptTemplate | None = None, user=None,
) -> list[GenerationJob]:
    """One generation job per task of the selection, each replacing its candidates."""
    plan = regeneration_plan(candidates=candidates, template=template)
    if not plan:
        raise JobError("candidates: none to regenerate (approved ones are kept as they are)")
    with transaction.atomic():
        # All or none: a bad model or template for one task launches nothing.
        jobs = [
            job_create(project=project, task=task, backend=backend, model=model, user=user,
                       template=template, regenerates=replaces)
            for task, replaces in sorted(plan.items())
        ]
        if not any(job.total for job in jobs):
            # Rolled back: an empty job would only say later what can be said now.
            raise JobError("candidates: their records cannot be generated with this backend: "
                           + "; ".join(job.skip_note for job in jobs if job.skip_note))
        return jobs
