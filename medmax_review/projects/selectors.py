from medmax_review.projects.models import Membership, Project


def memberships_for_user(*, user):
    return (
        Membership.objects.filter(user=user)
        .select_related("project")
        .order_by("project__name")
    )


def members_for_project(*, project: Project):
    return Membership.objects.filter(project=project).select_related("user", "user__profile")
