import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from medmax_review.projects.models import Membership, Project, UserProfile


def project_get_or_create(*, slug: str, name: str | None = None) -> tuple[Project, bool]:
    return Project.objects.get_or_create(slug=slug, defaults={"name": name or slug})


@transaction.atomic
def membership_set(*, project: Project, user, role: str) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    return membership


def user_create(*, username: str, password: str, credentialed: bool = False, **extra):
    user = get_user_model().objects.create_user(username=username, password=password, **extra)
    UserProfile.objects.create(user=user, credentialed_access=credentialed)
    return user


def member_add(
    *, project: Project, username: str, role: str, credentialed: bool = False, **extra
):
    """Add a user to the project, creating the account when it does not exist.

    Returns (membership, password): password is the new account's random password, shown once,
    or None when the account already existed. `extra` (e.g. is_staff) applies to a new account.
    """
    user = get_user_model().objects.filter(username=username).first()
    password = None
    if user is None:
        password = secrets.token_urlsafe(12)
        user = user_create(
            username=username, password=password, credentialed=credentialed, **extra
        )
    return membership_set(project=project, user=user, role=role), password


def member_remove(*, project: Project, user_id: int, acting_user) -> bool:
    """Remove a membership; an admin cannot remove themselves (a project keeps an admin)."""
    if user_id == acting_user.pk:
        return False
    deleted, _ = Membership.objects.filter(project=project, user_id=user_id).delete()
    return bool(deleted)
