from django.db.models import QuerySet

from medmax_review.core.access import has_credentialed_access
from medmax_review.projects.models import Project
from medmax_review.sources.models import ImageAsset, ImportRun, SourceRecord


def import_runs_for_project(*, project: Project, limit: int = 50) -> QuerySet[ImportRun]:
    return (
        ImportRun.objects.filter(project=project)
        .select_related("launched_by")
        .order_by("-created_at")[:limit]
    )


def image_asset_for_user(*, user, sha256: str) -> ImageAsset | None:
    """The image if one of the user's projects holds a record with it that they may see.

    A credentialed record's image needs credentialed access; the same bytes in an open record
    of a project the user belongs to are visible to them.
    """
    credentials = set(
        SourceRecord.objects.filter(
            image__sha256=sha256, project__memberships__user=user
        ).values_list("credential", flat=True).distinct()
    )
    if not credentials:
        return None
    if "no" not in credentials and not has_credentialed_access(user):
        return None
    return ImageAsset.objects.filter(sha256=sha256).first()
