"""The review screen in a real browser: keys, zoom, autosave, undo, conflicts, adjudication."""

import pytest
from django.urls import reverse

from medmax_review.review import claims, services
from medmax_review.review.models import Candidate, Decision, Draft
from tests.review.review_fixtures import DEMO_IMAGE, image_asset_create

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
    project.guidelines = (
        "## Laterality\n\nReject any answer whose laterality contradicts the source.\n\n"
        "## Approve when\n\n- the answer matches the **source answer**\n- the wording is clinical\n"
    )
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
    assert page.inner_text("#guidelines-overlay h3 >> nth=1") == "Approve when"
    assert page.locator("#guidelines-overlay li").count() == 2
    tab.shot("review-guidelines")
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
    # The picker leaves the response it rejects in view.
    picker = page.locator("#reject-panel .overlay-box").bounding_box()
    text = page.locator("[data-testid=response]").bounding_box()
    assert picker["x"] + picker["width"] <= text["x"], (picker, text)
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


def test_review_screen_next_image_ready_before_decision(open_tab, project, reviewer, make_candidates):
    paths = [DEMO_IMAGE.parent / name for name in ("synpic16221.jpg", "synpic17738.jpg")]
    second_image, third_image = (image_asset_create(p) for p in paths)
    (first,) = make_candidates(1, priorities=[0.9])
    (second,) = make_candidates(1, priorities=[0.5], image=second_image)
    (third,) = make_candidates(1, priorities=[0.1], image=third_image)
    next_url = reverse("image_file", args=[second_image.sha256])
    tab = open_tab()
    page = tab.page
    tab.login(reviewer)
    requests = []
    page.on("request", lambda r: requests.append(r))

    tab.goto(f"/p/{project.slug}/review/")
    page.wait_for_selector(f"#review-pane[data-ready='1'][data-candidate='{first.pk}']")
    # The next candidate's image is fetched while the clinician still looks at this one.
    page.wait_for_function(
        "url => performance.getEntriesByName(new URL(url, location.href).href)"
        ".some(e => e.responseEnd > 0)", arg=next_url,
    )
    assert [r for r in requests if r.url.endswith(next_url)]
    assert not Decision.objects.exists()

    seen = len(requests)
    page.keyboard.press("a")
    page.wait_for_selector(f"#review-pane[data-ready='1'][data-candidate='{second.pk}']")
    page.wait_for_function(
        "url => { const i = document.querySelector('#viewer-img');"
        " return i.getAttribute('src') === url && i.complete && i.naturalWidth > 0; }", arg=next_url,
    )
    # Shown from the cache: no request for it went out after the decision.
    later = [r for r in requests[seen:] if r.url.endswith(next_url)]
    assert later == [], [r.url for r in later]
    fetched = page.evaluate(
        "url => performance.getEntriesByName(new URL(url, location.href).href)"
        ".map(e => e.transferSize)", next_url,
    )
    assert fetched[0] > 0 and all(size == 0 for size in fetched[1:]), fetched
    # And the pane that just arrived names the one after it.
    third_url = reverse("image_file", args=[third_image.sha256])
    assert page.get_attribute("#review-pane", "data-next-image") == third_url
    tab.assert_no_csp_violations()


LONG_RESPONSE = "\n\n".join(
    f"Paragraph {i}: the axial CT shows a rounded opacity in the right lower lobe with spiculated "
    "margins, no pleural effusion and no mediastinal lymph node enlargement; compare with prior "
    "imaging before calling it new." for i in range(1, 7)
)


def test_review_screen_long_response_on_dicom_image(open_tab, project, reviewer, demo_data, make_candidates):
    from django.template.defaultfilters import floatformat
    from pydicom import dcmread

    from medmax_review.sources.images import image_store
    from medmax_review.sources.readers.dicom import render

    png, info = render(dcmread(demo_data / "dicom" / "CT_small.dcm"))
    ct = image_store(data=png, modality="CT")
    type(ct).objects.filter(pk=ct.pk).update(dicom=info)
    (c,) = make_candidates(1, image=ct, response=LONG_RESPONSE)
    tab = open_tab()
    page = tab.page
    tab.login(reviewer)
    tab.goto(f"/p/{project.slug}/review/{c.pk}/")
    page.wait_for_function("document.querySelector('#viewer-img').style.transform !== ''")
    # Fit means fully visible: the tool strip does not cover the bottom of the image.
    shown, tools = (page.locator(s).bounding_box() for s in ("#viewer-img", ".viewer-tools"))
    assert shown["y"] + shown["height"] <= tools["y"] + 1, (shown, tools)
    # The window the PNG was rendered with reads as a window, not as a data structure.
    note = page.inner_text("#window-note")
    window = info["window"]
    assert f"W{floatformat(window['width'], 0)} / L{floatformat(window['center'], 0)}" in note, note
    assert "{" not in note
    # Paragraphs stay paragraphs; the side panel scrolls, the action bar stays on screen.
    assert page.inner_text("[data-testid=response]").count("\n\n") == 5
    bar = page.locator(".action-bar").bounding_box()
    assert bar["y"] + bar["height"] <= 900
    tab.shot("review-long-response")
    page.keyboard.press("e")
    area = page.locator("#edit-response").bounding_box()
    assert area["height"] >= 250
    page.locator("#edit-response").press("End")
    page.keyboard.type(" Follow-up CT in three months.")
    page.wait_for_selector("#edit-diff ins")
    tab.shot("review-long-edit")
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
    # The message sits clear of the candidate's text and Esc dismisses it.
    box = two.page.locator("[data-testid=conflict]").bounding_box()
    side = two.page.locator(".panel.cand").bounding_box()
    assert box["y"] > side["y"] + side["height"], (box, side)
    two.page.keyboard.press("Escape")
    assert two.page.locator("[data-testid=conflict]").count() == 0
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


def _review_tab(open_tab, user, project, candidate):
    """A tab on the candidate's review page, its image loaded."""
    tab = open_tab()
    tab.login(user)
    tab.goto(f"/p/{project.slug}/review/{candidate.pk}/")
    tab.page.wait_for_function("document.querySelector('#viewer-img').naturalWidth > 0")
    return tab


def test_review_screen_dicom_window_presets(open_tab, project, reviewer, demo_data, make_candidates):
    from medmax_review.sources.models import SourceRecord
    from medmax_review.sources.services import records_import

    records_import(project=project, path=demo_data / "dicom" / "CT_small.dcm")
    ct = SourceRecord.objects.get(project=project, source="dicom").image
    presets = {n: reverse("image_file", args=[p["sha256"]]) for n, p in ct.dicom["presets"].items()}
    own = reverse("image_file", args=[ct.sha256])
    (c,) = make_candidates(1, image=ct)
    tab = _review_tab(open_tab, reviewer, project, c)
    page = tab.page
    assert "file's own window" in page.inner_text("#window-note")
    src = "e => e.getAttribute('src')"
    loaded = ("url => { const i = document.querySelector('#viewer-img');"
              " return i.getAttribute('src') === url && i.complete && i.naturalWidth > 0; }")
    # Zoom first: swapping the window keeps the view.
    page.keyboard.press("+")
    page.keyboard.press("ArrowLeft")
    view = page.eval_on_selector("#viewer-img", "e => e.style.transform")
    for key, name, label in (("2", "bone", "bone W1800/L400"), ("1", "lung", "lung W1500/L-600"),
                             ("3", "soft", "soft tissue W400/L40"), ("4", "brain", "brain W80/L40")):
        page.keyboard.press(key)
        assert page.eval_on_selector("#viewer-img", src) == presets[name]
        page.wait_for_function(loaded, arg=presets[name])
        assert label in page.inner_text("#window-note")
        assert page.eval_on_selector("#viewer-img", "e => e.style.filter") == ""
        assert page.is_visible(f"[data-window={name}].active")
    assert page.eval_on_selector("#viewer-img", "e => e.style.transform") == view
    assert page.eval_on_selector("#viewer-img", "e => e.naturalWidth") == ct.width
    tab.shot("review-dicom")
    # w (or the shown preset's key again) returns to the file's own window.
    page.keyboard.press("w")
    assert page.eval_on_selector("#viewer-img", src) == own
    assert "file's own window" in page.inner_text("#window-note")
    page.keyboard.press("1")
    page.keyboard.press("1")
    assert page.eval_on_selector("#viewer-img", src) == own
    page.wait_for_function(loaded, arg=own)
    tab.assert_no_csp_violations()


def test_review_screen_dicom_window_presets_approximate_without_renderings(
    open_tab, project, reviewer, image, make_candidates
):
    image.dicom = {"window": "W1500 L-600"}
    image.save()
    (c,) = make_candidates(1)
    own = reverse("image_file", args=[image.sha256])
    tab = _review_tab(open_tab, reviewer, project, c)
    page = tab.page
    assert "approximate a DICOM window" in page.inner_text("#window-note")
    page.keyboard.press("2")
    bone = page.eval_on_selector("#viewer-img", "e => e.style.filter")
    page.keyboard.press("1")
    lung = page.eval_on_selector("#viewer-img", "e => e.style.filter")
    assert "contrast" in bone and "contrast" in lung and bone != lung
    assert page.is_visible("[data-window=lung].active")
    assert "lung (approximate" in page.inner_text("#window-note")
    assert page.eval_on_selector("#viewer-img", "e => e.getAttribute('src')") == own
    page.keyboard.press("w")
    assert page.eval_on_selector("#viewer-img", "e => e.style.filter") == ""
    # Full resolution on demand: 1:1 shows the image at its natural size.
    page.keyboard.press("z")
    assert page.inner_text("#zoom-level") == "100%"
    tab.shot("review-dicom-approximate")
    tab.assert_no_csp_violations()
