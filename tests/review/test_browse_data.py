"""Test data for the candidate browser, history, bulk and statistics tests (no tests here).

Candidates are made the one supported way (candidates_create); scores, priority and status are
then set directly, as the scoring and review services would.
"""

import itertools

from medmax_review.core.medmax import IMAGE_BEFORE_INSTRUCTION
from medmax_review.review.candidates import CandidateSpec, candidates_create
from medmax_review.review.models import Candidate, Decision
from medmax_review.sources.models import SourceRecord

_serial = itertools.count(1)


def add_candidates(
    project, n=1, *, task="vqa", source="vqa_rad", license="CC0", model="smollm2-135m",
    template_ref="vqa/default@v1", response="The right lung.", priority=None, scores=None,
    status=None,
) -> list[Candidate]:
    """n new candidates (one record each) with the given attributes."""
    records = SourceRecord.objects.bulk_create(
        [
            SourceRecord(project=project, source=source, external_id=f"r{next(_serial)}",
                         license=license, question="Which lung?", answer="Right")
            for _ in range(n)
        ]
    )
    created = candidates_create(
        project=project,
        specs=[
            CandidateSpec(
                record_id=r.id, task=task, instruction="Which lung is opacified?",
                response=response, image_position=IMAGE_BEFORE_INSTRUCTION,
                template_ref=template_ref, provenance={"model": model, "backend": "template"},
            )
            for r in records
        ],
    )
    ids = [c.id for c in created]
    changes = {}
    if priority is not None:
        changes["priority"] = priority
    if scores is not None:
        changes["scores"] = scores
    if status is not None:
        changes["status"] = status
    if changes:
        Candidate.objects.filter(id__in=ids).update(**changes)
    return list(Candidate.objects.filter(id__in=ids).order_by("id"))


def decide(candidate, reviewer, action, **extra) -> Decision:
    return Decision.objects.create(
        candidate=candidate, reviewer=reviewer, action=action,
        candidate_version=candidate.version, **extra,
    )


def score(value, band, evidence=None) -> dict:
    return {"value": value, "band": band, "evidence": evidence or []}
