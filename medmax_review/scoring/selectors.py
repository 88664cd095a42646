"""Reads for pre-scoring."""

from medmax_review.projects.models import Project
from medmax_review.review.models import GENERATION_ERROR, Candidate


def candidate_ids_to_score(*, project: Project, only_missing: bool = False) -> list[int]:
    """Ids of the project's candidates worth scoring (those with text), in id order."""
    qs = Candidate.objects.filter(project=project).exclude(status=GENERATION_ERROR)
    if only_missing:
        qs = qs.filter(scores={})
    return list(qs.order_by("id").values_list("id", flat=True))
