"""Changing "reviews required": the settings page asks whether the waiting candidates follow."""

import pytest
from django.urls import reverse

from medmax_review.review import claims, selectors, services
from medmax_review.review.models import APPROVED, PENDING, ReviewSlot
from medmax_review.review.reviews_required import candidates_reviews_required_apply

pytestmark = pytest.mark.django_db


def set_required(project, n):
    project.reviews_required = n
    project.save(update_fields=["reviews_required"])


def states(candidate) -> list[str]:
    return sorted(candidate.slots.values_list("state", flat=True))


def decide(candidate, user, action):
    candidate.refresh_from_db()
    services.decision_record(candidate_id=candidate.pk, user=user, action=action,
                             version=candidate.version)


# --- the service


def test_raising_adds_open_slots_to_waiting_candidates_only(project, reviewer, make_candidates):
    # given one candidate claimed, one untouched, one already approved (one review each)
    claimed, fresh, done = make_candidates(3, priorities=[0.9, 0.5, 0.1])
    claims.claim_candidate(candidate=done, user=reviewer)
    decide(done, reviewer, "approve")
    claims.claim_candidate(candidate=claimed, user=reviewer)
    # when the project asks for two reviews and the admin applies it
    set_required(project, 2)
    assert selectors.candidates_slots_off_target(project=project).count() == 2
    change = candidates_reviews_required_apply(project=project)
    # then each waiting candidate gains an open slot; the approved one is left alone
    assert (change.candidates, change.added, change.removed, change.settled) == (2, 2, 0, 0)
    assert states(claimed) == [ReviewSlot.CLAIMED, ReviewSlot.OPEN]
    assert states(fresh) == [ReviewSlot.OPEN, ReviewSlot.OPEN]
    assert states(done) == [ReviewSlot.DONE]
    assert not selectors.candidates_slots_off_target(project=project).exists()


def test_lowering_removes_open_slots_and_settles_what_is_complete(
    project, two_reviews, reviewer, reviewer2, make_candidates
):
    # given (two reviews each): one approved once, one claimed once, one approved and claimed
    half_done, claimed, busy = make_candidates(3, priorities=[0.9, 0.5, 0.1])
    for c in (half_done, busy):
        claims.claim_candidate(candidate=c, user=reviewer)
        decide(c, reviewer, "approve")
    claims.claim_candidate(candidate=busy, user=reviewer2)
    claims.claim_candidate(candidate=claimed, user=reviewer)
    # when the project asks for one review and the admin applies it
    set_required(project, 1)
    change = candidates_reviews_required_apply(project=project)
    # then open slots go; the candidate whose one review is in is decided by it; a claim stays
    assert (change.candidates, change.added, change.removed, change.settled) == (2, 0, 2, 1)
    half_done.refresh_from_db()
    assert half_done.status == APPROVED and states(half_done) == [ReviewSlot.DONE]
    claimed.refresh_from_db()
    assert claimed.status == PENDING and states(claimed) == [ReviewSlot.CLAIMED]
    busy.refresh_from_db()
    assert busy.status == PENDING and states(busy) == [ReviewSlot.CLAIMED, ReviewSlot.DONE]
    # the kept claim still counts: its holder's decision settles the candidate
    decide(busy, reviewer2, "approve")
    busy.refresh_from_db()
    assert busy.status == APPROVED


# --- the pages


def settings_form(project, required):
    return {"name": project.name, "guidelines": "", "reviews_required": required,
            "auto_reject_thresholds": "{}"}


def test_settings_change_asks_with_the_count_then_applies(client, project, admin_user, make_candidates):
    make_candidates(3)
    client.force_login(admin_user)
    # when the admin raises reviews required, the settings page sends them to the question
    response = client.post(reverse("project_settings", args=[project.slug]), settings_form(project, 2))
    confirm = reverse("reviews_required_confirm", args=[project.slug])
    assert response.status_code == 302 and response.url == confirm
    page = client.get(confirm).content.decode()
    assert 'data-testid="affected">3<' in page and "Apply to the 3 waiting candidates" in page
    # and applying gives the three waiting candidates their second slot
    response = client.post(confirm, {"apply": "yes"}, follow=True)
    assert ReviewSlot.objects.count() == 6
    assert "applies to 3 waiting candidates: 3 review slots added" in response.content.decode()


def test_settings_change_kept_for_new_candidates_only(client, project, admin_user, make_candidates):
    make_candidates(2)
    client.force_login(admin_user)
    client.post(reverse("project_settings", args=[project.slug]), settings_form(project, 3))
    response = client.post(
        reverse("reviews_required_confirm", args=[project.slug]), {"apply": "no"}, follow=True
    )
    assert ReviewSlot.objects.count() == 2
    assert "applies to new candidates only" in response.content.decode()
    project.refresh_from_db()
    assert make_candidates(1)[0].slots.count() == 3


def test_settings_saved_without_a_change_of_reviews_required_asks_nothing(client, project, admin_user):
    client.force_login(admin_user)
    form = {**settings_form(project, project.reviews_required), "guidelines": "# Be careful"}
    response = client.post(reverse("project_settings", args=[project.slug]), form)
    assert response.url == reverse("project_settings", args=[project.slug])


def test_reviews_required_confirm_with_nothing_affected(client, project, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("reviews_required_confirm", args=[project.slug])).content.decode()
    assert "No candidate waiting for review is affected" in page


@pytest.mark.parametrize("who, status", [
    ("reviewer", 403), ("adjudicator", 403), ("outsider", 404), (None, 302),
])
def test_reviews_required_confirm_only_for_admins(client, project, make_candidates, request, who, status):
    make_candidates(1)
    set_required(project, 2)
    if who:
        client.force_login(request.getfixturevalue(who))
    url = reverse("reviews_required_confirm", args=[project.slug])
    assert client.get(url).status_code == status
    assert client.post(url, {"apply": "yes"}).status_code == status
    assert ReviewSlot.objects.count() == 1
