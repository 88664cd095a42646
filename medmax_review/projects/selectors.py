from django.db.models import Count

from medmax_review.projects.models import Membership, Project


def memberships_for_user(*, user):
    return (
        Membership.objects.filter(user=user)
        .select_related("project")
        .order_by("project__name")
    )


def members_for_project(*, project: Project):
    return Membership.objects.filter(project=project).select_related("user", "user__profile")


def project_summary(*, project: Project, user) -> dict:
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
    }
