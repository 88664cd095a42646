"""Creating candidates: shared by generation (model output) and MedMax import (existing rows).

Every candidate is born with its first Revision of each text field (author: the model) and one
ReviewSlot per required review, so the history and the queue never need a backfill.
"""

from collections.abc import Collection
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from medmax_review.core.bulk_write import objects_insert, rows_add
from medmax_review.projects.models import Project
from medmax_review.review.models import (
    APPROVE,
    APPROVED,
    GENERATION_ERROR,
    PENDING,
    Candidate,
    Decision,
    Revision,
)
from medmax_review.review.queue import slots_create

TEXT_FIELDS = ("instruction", "context", "response")


@dataclass
class CandidateSpec:
    record_id: int
    task: str
    instruction: str
    response: str
    image_position: str
    context: str = ""
    template_ref: str = "import"
    template_id: int | None = None
    template_version: int = 0
    sample_index: int = 0
    job_id: int | None = None
    provenance: dict = field(default_factory=dict)
    raw_output: str = ""
    generation_error: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    credential: bool = False
    regenerated_from_id: int | None = None

    def key(self) -> tuple:
        return (self.record_id, self.task, self.template_ref, self.sample_index)


def _existing_keys(specs: list[CandidateSpec], new_records) -> set[tuple]:
    record_ids = {s.record_id for s in specs}.difference(new_records)
    if not record_ids:
        return set()
    rows = Candidate.objects.filter(record_id__in=record_ids).values_list(
        "record_id", "task", "template_ref", "sample_index"
    )
    return set(rows)


def candidates_create(
    *, project: Project, specs: list[CandidateSpec], approved_note: str = "",
    new_records: Collection[int] = (),
) -> list[Candidate]:
    """Create the candidates that do not exist yet; running it twice creates nothing more.

    With `approved_note`, each new candidate is recorded as approved by a system decision
    carrying that note (used to re-import a published dataset unchanged). `new_records` are
    records written in this transaction, which have no candidates to look for yet.
    """
    existing = _existing_keys(specs, new_records)
    seen: set[tuple] = set()
    fresh = []
    for spec in specs:
        if spec.key() in existing or spec.key() in seen:
            continue
        seen.add(spec.key())
        fresh.append(spec)
    if not fresh:
        return []
    try:
        with transaction.atomic():
            return _insert(project=project, specs=fresh, approved_note=approved_note)
    except IntegrityError:
        # Another worker inserted some of these meanwhile: fall back to one at a time.
        created = []
        for spec in fresh:
            try:
                with transaction.atomic():
                    created += _insert(project=project, specs=[spec], approved_note=approved_note)
            except IntegrityError:
                continue
        return created


def _insert(*, project: Project, specs: list[CandidateSpec], approved_note: str) -> list[Candidate]:
    now = timezone.now()
    status_for = (lambda s: APPROVED) if approved_note else (
        lambda s: GENERATION_ERROR if s.generation_error else PENDING
    )
    # COPY on PostgreSQL: an import of published rows creates a candidate, three revisions and
    # a decision per row.
    candidates = objects_insert(model=Candidate, rows=[
        {"project_id": project.pk, "record_id": s.record_id, "job_id": s.job_id,
         "template_id": s.template_id, "template_ref": s.template_ref,
         "template_version": s.template_version, "sample_index": s.sample_index, "task": s.task,
         "instruction": s.instruction, "context": s.context, "response": s.response,
         "image_position": s.image_position, "provenance": s.provenance,
         "raw_output": s.raw_output, "generation_error": s.generation_error,
         "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens,
         "credential": s.credential, "regenerated_from_id": s.regenerated_from_id,
         "status": status_for(s), "decided_at": now if approved_note else None}
        for s in specs
    ])
    # Revisions and decisions are written as rows, not model instances: an import of published
    # rows makes four of them per candidate, and nobody reads them back here.
    rows_add(model=Revision, rows=[
        {"candidate_id": c.pk, "field": name, "text": getattr(c, name), "candidate_version": 1}
        for c in candidates
        for name in TEXT_FIELDS
        if c.status != GENERATION_ERROR
    ])
    if approved_note:
        rows_add(model=Decision, rows=[
            {"candidate_id": c.pk, "action": APPROVE, "system_note": approved_note,
             "candidate_version": 1}
            for c in candidates
        ])
    else:
        slots_create(project=project, candidates=[c for c in candidates if c.status == PENDING])
    return candidates

