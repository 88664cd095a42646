from django.core.cache import cache
from django.db.models import Count
from django.utils import timezone

from medmax_review.projects.models import Membership, Project


def memberships_for_user(*, user):
    return (
        Membership.objects.filter(user=user)
        .select_related("project")
        .order_by("project__name")
    )


def members_for_project(*, project: Project):
    return Membership.objects.filter(project=project).select_related("user", "user__profile")


SUMMARY_SECONDS = 30  # the dashboard's counts may lag this much; counting is O(project size)


def project_summary(*, project: Project, user) -> dict:
    """Records and candidates per status, counted at most once per SUMMARY_SECONDS per project
    (each web process keeps its own copy), so a busy dashboard never recounts a large project
    on every request."""
    key = f"project-summary:{project.pk}:{project.created_at.timestamp()}"
    summary = cache.get(key)
    if summary is None:
        summary = _summary_count(project)
        cache.set(key, summary, SUMMARY_SECONDS)
    return summary


def _summary_count(project: Project) -> dict:
    from medmax_review.review.models import Candidate

    by_status = dict(
        Candidate.objects.filter(project=project)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {
        "records": project.records.count(),
        "candidates": sum(by_status.values()),
        "by_status": by_status,
        "counted_at": timezone.now(),
    }
