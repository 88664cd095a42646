import base64
import json

import pytest
from django.conf import settings
from django.urls import reverse

from medmax_review.review import bulk
from medmax_review.review.browse_selectors import BrowseFilters
from medmax_review.review.models import (
    APPROVED,
    FLAGGED,
    PENDING,
    REJECT,
    REJECTED,
    AuditEntry,
    Decision,
    ReviewSlot,
)
from tests.review.test_browse_data import add_candidates, decide, score

SCORING_QUEUE = "scoring"  # where settings.CELERY_TASK_ROUTES sends scoring tasks


def _url(project):
    return reverse("candidate_bulk", args=[project.slug])


@pytest.fixture
def graded(project):
    """Grounding scores 0.1 / 0.2 (low), 0.8 (high), one without the score, one approved low."""
    low = add_candidates(project, 2, scores={"grounding": score(0.1, "poor")})
    low += add_candidates(project, 1, scores={"grounding": score(0.2, "poor")}, status=FLAGGED)
    high = add_candidates(project, 2, scores={"grounding": score(0.8, "good")})
    unscored = add_candidates(project, 1)
    approved_low = add_candidates(
        project, 1, scores={"grounding": score(0.05, "fail")}, status=APPROVED
    )
    return {"low": low, "high": high, "unscored": unscored, "approved_low": approved_low}


REJECT_FORM = {"action": bulk.REJECT_BELOW, "bulk_score": "grounding", "threshold": "0.3"}


# ---- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who, status", [("adjudicator", 403), ("reviewer", 403), ("outsider", 404)]
)
def test_candidate_bulk_only_admins(client, project, graded, request, who, status):
    client.force_login(request.getfixturevalue(who))
    response = client.post(_url(project), {**REJECT_FORM, "confirm": "yes"})
    assert response.status_code == status
    assert not AuditEntry.objects.exists()
    assert not Decision.objects.exists()


def test_candidate_bulk_get_not_allowed(client, project, admin_user):
    client.force_login(admin_user)
    assert client.get(_url(project)).status_code == 405


# ---- confirmation ----------------------------------------------------------------------------


def test_candidate_bulk_confirmation_shows_count_and_changes_nothing(client, project,
                                                                   admin_user, graded):
    client.force_login(admin_user)
    response = client.post(_url(project), REJECT_FORM)
    assert response.status_code == 200
    assert response.context["count"] == 3
    html = response.content.decode()
    assert "<b>3</b> candidates" in html
    assert 'name="confirm" value="yes"' in html
    assert 'name="bulk_score" value="grounding"' in html  # carried to the confirming POST
    assert not Decision.objects.exists()
    assert not AuditEntry.objects.exists()


def test_candidate_bulk_bad_threshold_is_400(client, project, admin_user, graded):
    client.force_login(admin_user)
    response = client.post(_url(project), {**REJECT_FORM, "threshold": "low"})
    assert response.status_code == 400
    assert b"threshold" in response.content


def test_candidate_bulk_reject_needs_a_score(client, project, admin_user, graded):
    client.force_login(admin_user)
    response = client.post(_url(project), {**REJECT_FORM, "bulk_score": ""})
    assert response.status_code == 400
    assert b"score" in response.content


# ---- reject below a threshold ----------------------------------------------------------------


def test_candidate_bulk_reject_below_threshold(client, project, admin_user, graded):
    client.force_login(admin_user)
    response = client.post(_url(project), {**REJECT_FORM, "confirm": "yes", "task": "vqa"})
    assert response.status_code == 302
    low_ids = {c.id for c in graded["low"]}
    rejected = Decision.objects.filter(action=REJECT)
    assert {d.candidate_id for d in rejected} == low_ids
    assert all(d.reviewer_id is None and "grounding < 0.3" in d.system_note for d in rejected)
    assert all(d.candidate_version == 1 for d in rejected)
    for c in graded["low"]:
        c.refresh_from_db()
        assert c.status == REJECTED and c.decided_at is not None
        assert c.version == 2
        assert not c.slots.exclude(state=ReviewSlot.DONE).exists()
    for c in graded["high"] + graded["unscored"]:
        c.refresh_from_db()
        assert c.status == PENDING and c.slots.count() == project.reviews_required
    # A human approval is never overridden by a threshold.
    graded["approved_low"][0].refresh_from_db()
    assert graded["approved_low"][0].status == APPROVED
    entry = AuditEntry.objects.get()
    assert entry.user == admin_user
    assert entry.action == "bulk_reject_below"
    assert entry.details == {
        "filters": {"task": "vqa"}, "count": 3, "score": "grounding",
        "threshold": 0.3,
    }


def test_bulk_run_reject_below_respects_filters(project, admin_user):
    keep = add_candidates(project, 2, source="slake", scores={"grounding": score(0.1, "poor")})
    hit = add_candidates(project, 2, source="vqa_rad", scores={"grounding": score(0.1, "poor")})
    request = bulk.BulkRequest(
        action=bulk.REJECT_BELOW, filters=BrowseFilters(source="vqa_rad"),
        score_name="grounding", threshold=0.5,
    )
    entry = bulk.bulk_run(project=project, user=admin_user, request=request)
    assert entry.details["count"] == 2
    assert set(Decision.objects.values_list("candidate_id", flat=True)) == {c.id for c in hit}
    assert all(c.slots.exists() for c in keep)


# ---- re-queue --------------------------------------------------------------------------------


def test_candidate_bulk_requeue_keeps_human_decisions(client, project, admin_user, reviewer):
    (c,) = add_candidates(project, 1, scores={"grounding": score(0.1, "poor")})
    human = decide(c, reviewer, REJECT, reason="hallucination")
    bulk.bulk_run(
        project=project, user=admin_user,
        request=bulk.BulkRequest(action=bulk.REJECT_BELOW, filters=BrowseFilters(),
                                 score_name="grounding", threshold=0.3),
    )
    c.refresh_from_db()
    assert c.status == REJECTED and not c.slots.exists()
    client.force_login(admin_user)
    response = client.post(
        _url(project), {"action": bulk.REQUEUE, "status": REJECTED, "confirm": "yes"}
    )
    assert response.status_code == 302
    c.refresh_from_db()
    assert c.status == PENDING and c.decided_at is None
    assert c.slots.filter(state=ReviewSlot.OPEN).count() == project.reviews_required
    assert Decision.objects.filter(id=human.id).exists()
    assert Decision.objects.filter(candidate=c).count() == 2  # the human's and the system's
    entry = AuditEntry.objects.get(action="bulk_requeue")
    assert entry.details == {"filters": {"status": REJECTED}, "count": 1}


def test_bulk_run_requeue_does_not_duplicate_slots(project, admin_user):
    cands = add_candidates(project, 3)
    bulk.bulk_run(
        project=project, user=admin_user,
        request=bulk.BulkRequest(action=bulk.REQUEUE, filters=BrowseFilters()),
    )
    assert ReviewSlot.objects.count() == 3 * project.reviews_required
    assert all(c.slots.count() == project.reviews_required for c in cands)


# ---- re-score --------------------------------------------------------------------------------


def _redis():
    import redis

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        from tests.conftest import require_service

        require_service("Redis (CELERY_BROKER_URL)")
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        from tests.conftest import require_service

        require_service("Redis (CELERY_BROKER_URL)")
    return client


def test_candidate_bulk_rescore_enqueues_batches_on_commit(
    client, project, admin_user, monkeypatch, django_capture_on_commit_callbacks
):
    broker = _redis()
    broker.delete(SCORING_QUEUE)
    monkeypatch.setattr(bulk, "BATCH", 3)
    cands = add_candidates(project, 7)
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(_url(project), {"action": bulk.RESCORE, "confirm": "yes"})
    assert response.status_code == 302
    assert broker.llen(SCORING_QUEUE) == 0  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    messages = [json.loads(m) for m in broker.lrange(SCORING_QUEUE, 0, -1)]
    broker.delete(SCORING_QUEUE)
    assert [m["headers"]["task"] for m in messages] == [bulk.SCORE_TASK] * 3
    batches = [json.loads(base64.b64decode(m["body"]))[0][0] for m in messages]
    assert sorted(len(b) for b in batches) == [1, 3, 3]
    assert sorted(i for b in batches for i in b) == [c.id for c in cands]
    assert AuditEntry.objects.get().details["count"] == 7
