import secrets

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction

from medmax_review.core.audit import audit_record
from medmax_review.core.models import AuditEvent
from medmax_review.projects.models import Membership, Project, UserProfile


def project_get_or_create(*, slug: str, name: str | None = None) -> tuple[Project, bool]:
    return Project.objects.get_or_create(slug=slug, defaults={"name": name or slug})


@transaction.atomic
def membership_set(*, project: Project, user, role: str, actor=None) -> Membership:
    """Give `user` the role in the project (adding them); `actor` is who did it, for the log."""
    before = Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    membership, _ = Membership.objects.update_or_create(
        project=project, user=user, defaults={"role": role}
    )
    if before != role:
        audit_record(AuditEvent.ROLE_CHANGED, actor=actor, project=project,
                     target=user.get_username(), before=before, after=role)
    return membership


def user_create(*, username: str, password: str, credentialed: bool = False, **extra):
    user = get_user_model().objects.create_user(username=username, password=password, **extra)
    UserProfile.objects.create(user=user, credentialed_access=credentialed)
    return user


def users_visible_to(actor):
    """The accounts an admin may add by name: those sharing a project with them (staff: all)."""
    users = get_user_model().objects.all()
    if actor.is_staff or actor.is_superuser:
        return users
    shared = Membership.objects.filter(project__memberships__user=actor).values("user_id")
    return users.filter(pk__in=shared)


ADDED, CREATED, UNAVAILABLE = "added", "created", "unavailable"


def member_add(
    *, project: Project, username: str, role: str, actor=None, credentialed: bool = False, **extra
):
    """Add a user to the project, creating the account when the name is free.

    Returns (outcome, membership, password): outcome ADDED for an account the actor could
    already see (it shares a project with them), CREATED with the new account's random
    password (shown once), or UNAVAILABLE for a name taken by an account the actor cannot
    see, which is neither added nor described. `credentialed` and `extra` (is_staff) apply to
    a new account and are for the set-up commands: the member form grants neither.
    """
    user = get_user_model().objects.filter(username=username).first()
    if user is not None:
        if actor is not None and not users_visible_to(actor).filter(pk=user.pk).exists():
            return UNAVAILABLE, None, None
        return ADDED, membership_set(project=project, user=user, role=role, actor=actor), None
    password = secrets.token_urlsafe(12)
    user = user_create(username=username, password=password, credentialed=credentialed, **extra)
    return CREATED, membership_set(project=project, user=user, role=role, actor=actor), password


def member_remove(*, project: Project, user_id: int, acting_user) -> bool:
    """Remove a membership; an admin cannot remove themselves (a project keeps an admin)."""
    if user_id == acting_user.pk:
        return False
    membership = Membership.objects.filter(project=project, user_id=user_id).select_related("user").first()
    if membership is None:
        return False
    membership.delete()
    audit_record(AuditEvent.MEMBER_REMOVED, actor=acting_user, project=project,
                 target=membership.user.get_username(), role=membership.role)
    return True


@transaction.atomic
def credentialed_access_set(*, user, granted: bool, actor) -> bool:
    """Grant or revoke credentialed access. Staff only: a project admin never can, so no one
    can give themselves or a friend access to credentialed records. True if it changed."""
    if actor is not None and not (actor.is_staff or actor.is_superuser):
        raise PermissionDenied("only staff may change credentialed access")
    profile, _ = UserProfile.objects.select_for_update().get_or_create(user=user)
    if profile.credentialed_access == granted:
        return False
    profile.credentialed_access = granted
    profile.save(update_fields=["credentialed_access"])
    audit_record(AuditEvent.CREDENTIAL_CHANGED, actor=actor, target=user.get_username(),
                 granted=granted)
    return True
