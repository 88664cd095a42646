"""Claiming under real concurrency: threads with their own PostgreSQL connections."""

import threading

import pytest
from django.db import connection

from medmax_review.projects import services as project_services
from medmax_review.projects.models import REVIEWER
from medmax_review.review import claims, services
from medmax_review.review.models import Decision, ReviewSlot
from tests.conftest import PASSWORD, require_service

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 20


@pytest.fixture
def crowd(project):
    if connection.vendor != "postgresql":
        require_service("PostgreSQL")
    users = []
    for i in range(THREADS):
        user = project_services.user_create(username=f"crowd{i}", password=PASSWORD)
        project_services.membership_set(project=project, user=user, role=REVIEWER)
        users.append(user)
    return users


def run_all(users, work):
    """Start every thread at the same moment; fail on any error or a thread that hangs."""
    barrier = threading.Barrier(len(users))
    errors = []

    def run(user):
        try:
            barrier.wait()
            work(user)
        except Exception as exc:  # reported below with the user
            errors.append((user.username, repr(exc)))
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread is stuck (deadlock or lock wait)"
    assert errors == []


def test_claim_next_concurrent_more_work_than_reviewers(project, crowd, make_candidates):
    make_candidates(THREADS + 5)
    got = {}
    run_all(crowd, lambda u: got.__setitem__(u.pk, claims.claim_next(project=project, user=u)))
    assert all(c is not None for c in got.values()), "someone was told empty while work remained"
    assert len({c.pk for c in got.values()}) == THREADS
    assert ReviewSlot.objects.filter(state=ReviewSlot.CLAIMED).count() == THREADS


def test_claim_next_concurrent_less_work_than_reviewers(project, crowd, make_candidates):
    make_candidates(7)
    got = {}
    run_all(crowd, lambda u: got.__setitem__(u.pk, claims.claim_next(project=project, user=u)))
    handed = [c.pk for c in got.values() if c is not None]
    assert len(handed) == 7 and len(set(handed)) == 7


def test_claim_and_decide_concurrently_until_queue_empty(project, crowd, make_candidates):
    project.reviews_required = 2
    project.save(update_fields=["reviews_required"])
    candidates = make_candidates(30)

    def drain(user):
        while (c := claims.claim_next(project=project, user=user)) is not None:
            services.decision_record(candidate_id=c.pk, user=user, action="approve", version=c.version)

    run_all(crowd, drain)
    assert ReviewSlot.objects.exclude(state=ReviewSlot.DONE).count() == 0
    # Every candidate reviewed by exactly two different reviewers, each once.
    for c in candidates:
        reviewers = list(Decision.objects.filter(candidate=c).values_list("reviewer", flat=True))
        assert len(reviewers) == 2 and len(set(reviewers)) == 2
        c.refresh_from_db()
        assert c.status == "approved"
