"""Shared fixtures: a cast (admin, adjudicator, reviewer, outsider) and a project with records.

The suite runs against PostgreSQL and Redis (the Makefile sets DATABASE_URL and
CELERY_BROKER_URL); a test needing a service that is absent fails in CI and skips locally.
"""

import os
from pathlib import Path

import pytest

from medmax_review.projects import services as project_services
from medmax_review.projects.models import ADJUDICATOR, ADMIN, REVIEWER

DEMO_DATA = Path(__file__).resolve().parent.parent / "demo_data"
PASSWORD = "correct horse battery staple"


def require_service(what: str) -> None:
    """Fail in CI, skip locally, naming the missing service."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available here")


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()


@pytest.fixture
def demo_data() -> Path:
    return DEMO_DATA


@pytest.fixture
def project(db):
    project, _ = project_services.project_get_or_create(slug="chest", name="Chest VQA")
    return project


def _member(project, username, role, credentialed=False):
    user = project_services.user_create(
        username=username, password=PASSWORD, credentialed=credentialed
    )
    if role:
        project_services.membership_set(project=project, user=user, role=role)
    return user


@pytest.fixture
def admin_user(project):
    return _member(project, "alice_admin", ADMIN, credentialed=True)


@pytest.fixture
def adjudicator(project):
    return _member(project, "adam_adjudicator", ADJUDICATOR)


@pytest.fixture
def reviewer(project):
    return _member(project, "rita_reviewer", REVIEWER)


@pytest.fixture
def reviewer2(project):
    return _member(project, "rob_reviewer", REVIEWER)


@pytest.fixture
def outsider(project):
    return _member(project, "olga_outsider", None)
