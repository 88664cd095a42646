"""Who may see and do what: outsiders get 404, members without the role get 403."""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from medmax_review.projects.models import ADMIN, ROLE_RANK, Membership, Project


def project_for(user, slug: str, role: str) -> tuple[Project, Membership]:
    """The project and the user's membership, if the user holds at least `role` in it."""
    if not user.is_authenticated:
        raise Http404
    membership = (
        Membership.objects.select_related("project").filter(project__slug=slug, user=user).first()
    )
    if membership is None:
        raise Http404("No such project")
    if ROLE_RANK[membership.role] < ROLE_RANK[role]:
        raise PermissionDenied(f"This needs the {role} role in {membership.project.name}")
    return membership.project, membership


def is_project_admin(membership: Membership) -> bool:
    return membership.role == ADMIN


def has_credentialed_access(user) -> bool:
    profile = getattr(user, "profile", None)
    return bool(profile and profile.credentialed_access)


# The one rule for credentialed content: its text, images and files reach only users whose
# credentialed access a staff member granted, whatever their role in the project. Every read
# of candidates or records for display goes through one of these.


def readable_candidates(queryset, user):
    """The candidates of `queryset` the user may read."""
    return queryset if has_credentialed_access(user) else queryset.filter(credential=False)


def readable_records(queryset, user):
    """The source records of `queryset` the user may read."""
    return queryset if has_credentialed_access(user) else queryset.exclude(credential="yes")


def may_read_credentialed(user, *, credentialed: bool) -> bool:
    """Whether the user may read one item (a candidate, a record, an export's files)."""
    return not credentialed or has_credentialed_access(user)
