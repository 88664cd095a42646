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
