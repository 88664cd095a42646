import pytest
from django.urls import reverse

from medmax_review.review import claims
from medmax_review.review.models import (
    ADJUDICATION,
    APPROVED,
    Candidate,
    Decision,
    Draft,
    ReviewSlot,
)
from tests.conftest import PASSWORD
from tests.review.review_fixtures import DEMO_IMAGE, image_asset_create

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def url(name, project, *args):
    return reverse(name, args=[project.slug, *args])


def test_review_next_redirects_to_claimed_candidate(client, project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    response = login(client, reviewer).get(url("review_next", project))
    assert response.status_code == 302 and response.url == url("review_candidate", project, c.pk)


def test_review_next_empty_queue(client, project, reviewer):
    response = login(client, reviewer).get(url("review_next", project))
    assert response.status_code == 200 and b"Nothing left for you to review" in response.content


def test_review_candidate_page_shows_source_scores_and_escapes(client, project, reviewer, make_candidates):
    scores = {"laterality": {"value": 0.0, "band": "fail", "evidence": [
        {"rule": "laterality", "text": "source says right", "spans": [[4, 8]], "field": "response"}]}}
    (c,) = make_candidates(1, response="The left lung <script>alert(1)</script>", scores=scores)
    body = login(client, reviewer).get(url("review_candidate", project, c.pk)).content.decode()
    assert "Which lung has an opacity?" in body and "CC0-1.0" in body and "SmolLM2-135M" in body
    assert "<mark>left</mark>" in body
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert 'class="band">fail<' in body and "source says right" in body
    assert reverse("image_file", args=[c.record.image.sha256]) in body


def test_review_candidate_dicom_shows_window_note(client, project, reviewer, make_candidates, image):  # noqa: F811
    image.dicom = {"window": "W400 L40"}
    image.save()
    (c,) = make_candidates(1)
    body = login(client, reviewer).get(url("review_candidate", project, c.pk)).content.decode()
    assert "approximate a DICOM window" in body and "4 brain" in body


def test_review_views_outsider_404(client, project, outsider, make_candidates):
    (c,) = make_candidates(1)
    login(client, outsider)
    assert client.get(url("review_next", project)).status_code == 404
    assert client.get(url("review_candidate", project, c.pk)).status_code == 404
    assert client.post(url("review_decide", project, c.pk), {"action": "approve", "version": 1}).status_code == 404
    assert client.post(url("review_draft", project, c.pk), {"version": 1}).status_code == 404
    assert client.post(url("review_undo", project)).status_code == 404
    assert client.get(url("adjudication_queue", project)).status_code == 404


def test_review_views_anonymous_redirected_to_login(client, project, make_candidates):
    (c,) = make_candidates(1)
    response = client.get(url("review_candidate", project, c.pk))
    assert response.status_code == 302 and "/login/" in response.url


def test_adjudication_reviewer_gets_403(client, project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    login(client, reviewer)
    assert client.get(url("adjudication_queue", project)).status_code == 403
    assert client.get(url("adjudication_candidate", project, c.pk)).status_code == 403
    assert client.post(url("adjudication_candidate", project, c.pk), {"choice": "reject"}).status_code == 403


def test_credentialed_candidate_404_without_access(client, project, reviewer, admin_user, make_candidates):
    (c,) = make_candidates(1, credential=True)
    assert login(client, reviewer).get(url("review_candidate", project, c.pk)).status_code == 404
    client.logout()
    assert login(client, admin_user).get(url("review_candidate", project, c.pk)).status_code == 200


def test_decide_approve_renders_next_candidate(client, project, reviewer, make_candidates):
    first, second = make_candidates(2, priorities=[0.9, 0.1])
    login(client, reviewer).get(url("review_next", project))
    response = client.post(
        url("review_decide", project, first.pk),
        {"action": "approve", "version": 1, "idempotency_key": "abc"}, **HX,
    )
    assert response.status_code == 200
    assert response["HX-Push-Url"] == url("review_candidate", project, second.pk)
    assert f'data-candidate="{second.pk}"' in response.content.decode()
    first.refresh_from_db()
    assert first.status == APPROVED


def test_review_pane_names_next_candidates_image(client, project, reviewer, make_candidates):
    other = image_asset_create(DEMO_IMAGE.parent / "synpic16221.jpg")
    (first,) = make_candidates(1, priorities=[0.9])
    (second,) = make_candidates(1, priorities=[0.5], image=other)
    (third,) = make_candidates(1, priorities=[0.1], image=other)
    login(client, reviewer)
    body = client.get(url("review_next", project), follow=True).content.decode()
    assert f'data-next-image="{reverse("image_file", args=[other.sha256])}"' in body
    # The peek claims nothing: the next candidate stays open for anyone.
    assert ReviewSlot.objects.get(candidate=second).state == ReviewSlot.OPEN
    # The next pane (second) comes back with the decision; its successor shares its image,
    # which is already loading, so nothing more is named.
    response = client.post(url("review_decide", project, first.pk), {"action": "approve", "version": 1}, **HX)
    assert f'data-candidate="{second.pk}"' in response.content.decode()
    assert "data-next-image" not in response.content.decode()
    # The last candidate: nothing after it.
    response = client.post(url("review_decide", project, second.pk), {"action": "approve", "version": 1}, **HX)
    assert f'data-candidate="{third.pk}"' in response.content.decode()
    assert "data-next-image" not in response.content.decode()


def test_review_page_renders_guidelines_markdown(client, project, reviewer, make_candidates):
    project.guidelines = "## Laterality\n\n- Reject a **wrong side**.\n- <script>alert(1)</script>"
    project.save()
    (c,) = make_candidates(1)
    body = login(client, reviewer).get(url("review_candidate", project, c.pk)).content.decode()
    assert "<h3>Laterality</h3>" in body and "<strong>wrong side</strong>" in body
    assert "<li>&lt;script&gt;alert(1)&lt;/script&gt;</li>" in body
    assert '<pre class="guidelines">' not in body


def test_decide_stale_version_409_with_fragment(client, project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    login(client, reviewer).get(url("review_next", project))
    Candidate.objects.filter(pk=c.pk).update(version=3)
    response = client.post(url("review_decide", project, c.pk), {"action": "approve", "version": 1}, **HX)
    assert response.status_code == 409
    assert response["HX-Retarget"] == "#conflict"
    assert b"changed since you loaded it" in response.content
    assert not Decision.objects.exists()


def test_decide_double_submit_recorded_once(client, project, reviewer, make_candidates):
    make_candidates(2)
    login(client, reviewer)
    c = claims.claim_next(project=project, user=reviewer)
    data = {"action": "approve", "version": 1, "idempotency_key": "same-key"}
    assert client.post(url("review_decide", project, c.pk), data, **HX).status_code == 200
    assert client.post(url("review_decide", project, c.pk), data, **HX).status_code == 200
    assert Decision.objects.filter(candidate=c).count() == 1


def test_decide_reject_without_reason_400(client, project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    login(client, reviewer).get(url("review_next", project))
    response = client.post(url("review_decide", project, c.pk), {"action": "reject", "version": 1}, **HX)
    assert response.status_code == 400 and b"reason" in response.content


def test_draft_autosave_and_restore_on_reload(client, project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    login(client, reviewer).get(url("review_next", project))
    response = client.post(
        url("review_draft", project, c.pk),
        {"version": 1, "instruction": c.instruction, "response": "The right lung <b>is</b> clear."}, **HX,
    )
    body = response.content.decode()
    assert response.status_code == 200 and 'id="draft-status"' in body
    assert 'hx-swap-oob="true"' in body and "<del>left</del><ins>right</ins>" in body
    assert "&lt;b&gt;is&lt;/b&gt;" in body
    assert Draft.objects.get().response == "The right lung <b>is</b> clear."
    page = client.get(url("review_candidate", project, c.pk)).content.decode()
    assert "Draft restored" in page and "The right lung &lt;b&gt;is&lt;/b&gt; clear." in page


def test_undo_view_renders_undone_candidate(client, project, reviewer, make_candidates):
    first, _ = make_candidates(2, priorities=[0.9, 0.1])
    login(client, reviewer).get(url("review_next", project))
    client.post(url("review_decide", project, first.pk), {"action": "approve", "version": 1}, **HX)
    response = client.post(url("review_undo", project), {"idempotency_key": "u1"}, **HX)
    assert response.status_code == 200 and f'data-candidate="{first.pk}"'.encode() in response.content
    first.refresh_from_db()
    assert first.status == "pending"


def test_undo_nothing_409(client, project, reviewer):
    response = login(client, reviewer).post(url("review_undo", project), **HX)
    assert response.status_code == 409 and b"Nothing to undo" in response.content


def test_adjudication_flow_by_adjudicator(client, project, two_reviews, reviewer, reviewer2, adjudicator, make_candidates):
    (c,) = make_candidates(1)
    for user, data in ((reviewer, {"action": "approve"}), (reviewer2, {"action": "edit", "instruction": c.instruction, "response": "Right lung."})):
        client.logout()
        login(client, user).get(url("review_next", project))
        assert client.post(url("review_decide", project, c.pk), {**data, "version": 1}, **HX).status_code == 200
    c.refresh_from_db()
    assert c.status == ADJUDICATION
    client.logout()
    login(client, adjudicator)
    queue = client.get(url("adjudication_queue", project)).content.decode()
    assert url("adjudication_candidate", project, c.pk) in queue
    page = client.get(url("adjudication_candidate", project, c.pk)).content.decode()
    assert "<ins>" in page and "<del>" in page and "rita_reviewer: approve" in page
    edit = Decision.objects.get(candidate=c, action="edit")
    response = client.post(url("adjudication_candidate", project, c.pk), {"choice": edit.pk, "version": c.version}, **HX)
    assert response.status_code == 200 and response["HX-Redirect"] == url("adjudication_queue", project)
    c.refresh_from_db()
    assert c.status == APPROVED and c.response == "Right lung."


def test_overturn_view_reopens_system_rejection(client, project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    Candidate.objects.filter(pk=c.pk).update(status="rejected", version=2)
    Decision.objects.create(candidate=c, action="reject", reason="formatting", system_note="format score 0.1", candidate_version=1)
    login(client, reviewer)
    page = client.get(url("review_candidate", project, c.pk)).content.decode()
    assert "Rejected automatically: format score 0.1" in page
    response = client.post(url("review_overturn", project, c.pk), {"version": 2}, **HX)
    assert response.status_code == 200 and b'data-key="a"' in response.content


def test_review_candidate_page_shows_evidence_of_any_shape(client, project, reviewer, make_candidates):
    # given scores whose evidence is a plain string, a mapping, or items with no field
    scores = {
        "fluency": {"value": 0.6, "band": "fair", "evidence": "reads as a caption"},
        "length": {"value": 0.3, "band": "poor", "evidence": {"words": 3}},
        "grounding": {"value": 0.1, "band": "odd", "evidence": [{"rule": "r", "text": "no source"}]},
    }
    (c,) = make_candidates(1, scores=scores)
    # when the reviewer opens it
    body = login(client, reviewer).get(url("review_candidate", project, c.pk)).content.decode()
    # then every piece of evidence shows, as on the history page, and an unknown band says so
    assert "reads as a caption" in body and "words: 3" in body
    assert "no source" in body and "(response)" in body
    assert 'class="band">unknown<' in body
