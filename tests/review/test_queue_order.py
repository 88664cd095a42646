"""The project setting that orders the queue: likely rejections first, most uncertain first, or
the pre-scores alone; candidates without a learned risk come after those with one."""

import pytest

from medmax_review.projects.models import QUEUE_LIKELY_BAD, QUEUE_SCORES, QUEUE_UNCERTAIN
from medmax_review.review.claims import claim_held, claim_next, claim_release
from medmax_review.review.models import Candidate, ReviewSlot
from medmax_review.review.queue import slots_order_sync

# (priority from the scores, learned reject risk)
PLAN = [(0.9, None), (0.1, 0.97), (0.5, 0.52), (0.7, 0.05), (0.2, 0.30)]


@pytest.fixture
def queue(project, make_candidates):
    candidates = make_candidates(len(PLAN))
    for c, (priority, risk) in zip(candidates, PLAN, strict=True):
        c.priority, c.reject_risk = priority, risk
    Candidate.objects.bulk_update(candidates, ["priority", "reject_risk"])
    assert slots_order_sync(candidates=candidates) == len(PLAN)
    return candidates


def _handed_out(project, user, n):
    order = []
    for _ in range(n):
        candidate = claim_next(project=project, user=user)
        order.append(PLAN[[c for c in Candidate.objects.order_by("id")].index(candidate)])
        # Skip past it without deciding: a released claim goes back to the queue, so mark
        # the slot done to see the next one.
        slot = claim_held(project=project, user=user)
        ReviewSlot.objects.filter(pk=slot.pk).update(state=ReviewSlot.DONE)
    return order


@pytest.mark.parametrize(("order", "expected"), [
    (QUEUE_LIKELY_BAD, [(0.1, 0.97), (0.5, 0.52), (0.2, 0.30), (0.7, 0.05), (0.9, None)]),
    (QUEUE_UNCERTAIN, [(0.5, 0.52), (0.2, 0.30), (0.7, 0.05), (0.1, 0.97), (0.9, None)]),
    (QUEUE_SCORES, [(0.9, None), (0.7, 0.05), (0.5, 0.52), (0.2, 0.30), (0.1, 0.97)]),
])
def test_queue_follows_the_project_order(project, queue, reviewer, order, expected):
    project.queue_order = order
    project.save(update_fields=["queue_order"])
    assert _handed_out(project, reviewer, len(PLAN)) == expected


def test_slots_follow_a_changed_risk_and_a_released_claim_keeps_it(project, queue, reviewer):
    project.queue_order = QUEUE_LIKELY_BAD
    project.save(update_fields=["queue_order"])
    calm = queue[0]
    calm.reject_risk = 0.99
    Candidate.objects.filter(pk=calm.pk).update(reject_risk=0.99)
    assert slots_order_sync(candidates=[calm]) == 1
    assert slots_order_sync(candidates=queue) == 0  # nothing lags any more
    first = claim_next(project=project, user=reviewer)
    assert first.pk == calm.pk
    claim_release(slot=claim_held(project=project, user=reviewer))
    assert ReviewSlot.objects.get(candidate=calm).risk == 0.99


def test_settings_page_saves_the_queue_order(client, project, admin_user):
    client.force_login(admin_user)
    response = client.post(f"/p/{project.slug}/settings/", {
        "name": project.name, "guidelines": "", "reviews_required": 1,
        "auto_reject_thresholds": "{}", "queue_order": QUEUE_UNCERTAIN,
        "auto_reject_max_wrong": "0.1"})
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.queue_order, project.auto_reject_max_wrong) == (QUEUE_UNCERTAIN, 0.1)
    bad = client.post(f"/p/{project.slug}/settings/", {
        "name": project.name, "reviews_required": 1, "auto_reject_max_wrong": "5"})
    assert bad.status_code == 200 and "A share between 0 and 1" in bad.content.decode()
