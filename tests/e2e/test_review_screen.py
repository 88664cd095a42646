"""The review screen in a real browser: keys, zoom, autosave, undo, conflicts, adjudication."""

import pytest

from medmax_review.review import claims, services
from medmax_review.review.models import Candidate, Decision, Draft

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCORES = {
    "grounding": {"value": 0.8, "band": "good", "evidence": []},
    "laterality": {"value": 0.0, "band": "fail", "evidence": [
        {"rule": "laterality_mismatch", "text": "source answer says Right, response says left",
         "spans": [[4, 8]], "field": "response"}]},
    "phi": {"value": 1.0, "band": "good", "evidence": []},
    "format": {"value": 0.6, "band": "fair", "evidence": [
        {"rule": "short_response", "text": "response is one sentence", "spans": [], "field": "response"}]},
}


def test_review_screen_keyboard_flow(open_tab, project, reviewer, make_candidates):
    project.guidelines = "Reject any answer whose laterality contradicts the source."
    project.save()
    first, second, third = make_candidates(3, priorities=[0.9, 0.5, 0.1], scores=SCORES)
    tab = open_tab()
    page = tab.page
    tab.login(reviewer)

    # Next: the highest-priority candidate, its image fit to the screen.
    tab.goto(f"/p/{project.slug}/review/")
    page.wait_for_url(f"**/review/{first.pk}/")
    page.wait_for_function("document.querySelector('#viewer-img').naturalWidth > 0")
    assert page.inner_text("#zoom-level") == "fit"
    assert page.inner_text("[data-testid=response] mark") == "left"
    page.click("details.band-fail summary")
    tab.shot("review-screen")

    # Zoom with keys and the wheel, pan with arrows, 0 fits again.
    page.keyboard.press("+")
    assert page.inner_text("#zoom-level") != "fit"
    before = page.eval_on_selector("#viewer-img", "e => e.style.transform")
    page.keyboard.press("ArrowLeft")
    assert page.eval_on_selector("#viewer-img", "e => e.style.transform") != before
    page.keyboard.press("0")
    assert page.inner_text("#zoom-level") == "fit"
    page.mouse.move(300, 400)
    page.mouse.wheel(0, -300)
    # Wheel events are delivered asynchronously: wait for the viewer to react.
    page.wait_for_function("document.querySelector('#zoom-level').textContent !== 'fit'")
    page.keyboard.press("0")

    # Overlays: keys and guidelines.
    page.keyboard.press("?")
    assert page.is_visible("#keys-overlay")
    tab.shot("review-keys")
    page.keyboard.press("Escape")
    page.keyboard.press("g")
    assert "laterality contradicts" in page.inner_text("#guidelines-overlay")
    page.keyboard.press("Escape")

    # Edit: autosaved as the clinician types, the diff shows under the editor.
    page.keyboard.press("e")
    area = page.locator("#edit-response")
    assert area.is_visible()
    area.fill("The right lung has an opacity.")
    page.wait_for_selector("#draft-status:has-text('draft saved')")
    page.wait_for_selector("#edit-diff ins")
    assert "right" in page.inner_text("#edit-diff ins")
    assert Draft.objects.get(candidate=first).response == "The right lung has an opacity."
    tab.shot("review-edit")

    # Reload: the draft is back, in the editor.
    page.reload()
    assert page.locator("#edit-response").input_value() == "The right lung has an opacity."
    assert page.is_visible("text=Draft restored")

    # Save the edit (Ctrl+Enter): the next candidate swaps in directly.
    page.locator("#edit-response").focus()
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(f"#review-pane[data-ready='1'][data-candidate='{second.pk}']")
    page.wait_for_url(f"**/review/{second.pk}/")
    first.refresh_from_db()
    assert first.status == "approved" and first.response == "The right lung has an opacity."

    # Approve by key.
    page.keyboard.press("a")
    page.wait_for_selector(f"#review-pane[data-ready='1'][data-candidate='{third.pk}']")
    assert Candidate.objects.get(pk=second.pk).status == "approved"
    assert page.inner_text("[data-testid=today]") == "2"

    # Reject with a reason by keys: r, 2 (wrong laterality), Enter.
    page.keyboard.press("r")
    assert page.is_visible("#reject-panel")
    tab.shot("review-reject")
    page.keyboard.press("2")
    page.keyboard.type("says left, source says right")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Nothing left for you to review")
    rejection = Decision.objects.get(candidate=third, action="reject")
    assert (rejection.reason, rejection.comment) == ("laterality", "says left, source says right")

    # Undo brings the rejected candidate back, pending, under the reviewer's claim.
    page.keyboard.press("u")
    page.wait_for_selector(f"#review-pane[data-ready='1'][data-candidate='{third.pk}']")
    third.refresh_from_db()
    assert third.status == "pending"
    assert Decision.objects.filter(candidate=third, action="undo", undoes=rejection).exists()
    tab.assert_no_csp_violations()


def test_review_screen_second_tab_gets_conflict(browser, open_tab, project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    one = open_tab()
    one.login(reviewer)
    two = open_tab(one.page.context)
    for tab in (one, two):
        tab.goto(f"/p/{project.slug}/review/{c.pk}/")
        tab.page.wait_for_selector(f"#review-pane[data-ready='1'][data-candidate='{c.pk}']")
    one.page.keyboard.press("a")
    one.page.wait_for_selector("text=Nothing left for you to review")

    two.page.keyboard.press("a")
    two.page.wait_for_selector("[data-testid=conflict]")
    text = two.page.inner_text("[data-testid=conflict]")
    assert "changed since you loaded it" in text and "approved" in text
    two.shot("review-conflict")
    assert Decision.objects.filter(candidate=c).count() == 1
    one.assert_no_csp_violations()
    two.assert_no_csp_violations()


def test_adjudicator_resolves_disagreement(open_tab, project, two_reviews, reviewer, reviewer2, adjudicator, make_candidates):
    (c,) = make_candidates(1)
    for user in (reviewer, reviewer2):
        claims.claim_next(project=project, user=user)
    services.decision_record(candidate_id=c.pk, user=reviewer, action="approve", version=1)
    services.decision_record(candidate_id=c.pk, user=reviewer2, action="edit", version=1,
                             instruction=c.instruction, response="The right lung has an opacity.")
    c.refresh_from_db()
    assert c.status == "adjudication"

    tab = open_tab()
    page = tab.page
    tab.login(adjudicator)
    tab.goto(f"/p/{project.slug}/review/adjudication/")
    page.click(f"text={c.pk}")
    page.wait_for_selector("[data-testid=version]")
    assert page.locator("[data-testid=version]").count() == 2
    assert "right" in page.inner_text(".version ins")
    tab.shot("adjudication")
    page.click("[data-testid=choose-2]")
    page.wait_for_selector("text=Nothing awaits adjudication")
    c.refresh_from_db()
    assert c.status == "approved" and c.response == "The right lung has an opacity."
    assert Decision.objects.filter(candidate=c, action="adjudicate", reviewer=adjudicator).count() == 1
    tab.assert_no_csp_violations()


def test_review_screen_dicom_window_presets(open_tab, project, reviewer, image, make_candidates):
    image.dicom = {"window": "W1500 L-600"}
    image.save()
    (c,) = make_candidates(1)
    tab = open_tab()
    page = tab.page
    tab.login(reviewer)
    tab.goto(f"/p/{project.slug}/review/{c.pk}/")
    page.wait_for_function("document.querySelector('#viewer-img').naturalWidth > 0")
    assert "approximate a DICOM window" in page.inner_text("#window-note")
    page.keyboard.press("2")
    bone = page.eval_on_selector("#viewer-img", "e => e.style.filter")
    page.keyboard.press("1")
    lung = page.eval_on_selector("#viewer-img", "e => e.style.filter")
    assert "contrast" in bone and "contrast" in lung and bone != lung
    assert page.is_visible("[data-window=lung].active")
    # Full resolution on demand: 1:1 shows the image at its natural size.
    page.keyboard.press("z")
    assert page.inner_text("#zoom-level") == "100%"
    tab.shot("review-dicom")
    tab.assert_no_csp_violations()
