"""Accessibility and the dark theme: focus after decisions, modal dialogs, errors in words, the
focus ring, contrast in both themes, and axe-core on the review, adjudication and browser pages."""

import pytest

from medmax_review.review import claims, services
from medmax_review.review.models import Decision
from tests.e2e.a11y import assert_contrast, axe_serious, contrast, ratio

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCORES = {
    "consistency": {"value": 0.0, "band": "fail", "evidence": [
        {"rule": "laterality", "text": 'response says "left" but the source says "right"',
         "spans": [[4, 8]], "field": "response"}]},
    "grounding": {"value": 0.8, "band": "good", "evidence": [
        {"rule": "method", "text": "method: lexical overlap only (embedding model not installed)",
         "field": "", "spans": []}]},
    "phi": {"value": 1.0, "band": "good", "evidence": []},
    "format": {"value": 0.5, "band": "fair", "evidence": [
        {"rule": "too_short", "text": "the response has only 2 word(s)", "field": "response",
         "spans": [[0, 22]]}]},
    "image": {"value": 0.5, "band": "fair", "evidence": [
        {"rule": "near_duplicate", "text": "perceptually near-identical image(s): vqa_rad:7 (distance 3)",
         "field": "", "spans": []}]},
    "near_duplicate": {"value": 1.0, "band": "good", "evidence": []},
}

# Text on its background, the pairs a clinician reads all day.
READ = [
    ".queue-bar", ".panel.source h2", ".src-field .label", ".src-field .text",
    "[data-testid=response]", "[data-testid=response] mark", ".score .score-name",
    ".score .score-value", ".band-good .band", ".band-fair .band", ".band-fail .band",
    ".action-bar button.ok", ".action-bar button.bad", "#actions-form button[value=skip]",
    ".action-bar kbd", ".topbar .brand", "#theme-toggle",
]


def _review(open_tab, user, project, candidate, **options):
    """A new tab with `user` signed in on `candidate`'s review page."""
    tab = open_tab(**options)
    tab.login(user)
    tab.goto(f"/p/{project.slug}/review/{candidate.pk}/")
    tab.page.wait_for_selector(f"#review-pane[data-ready='1'][data-candidate='{candidate.pk}']")
    return tab


def test_decisions_move_focus_and_are_announced(open_tab, project, reviewer, make_candidates):
    first, second = make_candidates(2, priorities=[0.9, 0.1])
    tab = _review(open_tab, reviewer, project, first)
    page = tab.page
    page.keyboard.press("a")
    page.wait_for_selector(f"#review-pane[data-ready='1'][data-candidate='{second.pk}']")
    page.wait_for_function("() => document.activeElement.dataset.key === 'a'")
    live = page.locator("#review-announce")
    assert live.get_attribute("aria-live") == "polite"
    assert live.inner_text() == f"Approved. Now candidate {second.pk}, vqa. 1 left."
    page.keyboard.press("s")
    page.wait_for_selector("text=Nothing left for you to review")
    # The link itself, not the body: until the pane settles, focus sits on <body>, whose text
    # already holds "Check again".
    page.wait_for_function(
        "() => document.activeElement.matches('.empty-queue a')"
        " && document.activeElement.textContent.includes('Check again')")
    assert live.inner_text().startswith("Skipped. Nothing left to review")
    tab.assert_no_csp_violations()


def test_dialogs_are_modal_take_and_return_focus(open_tab, project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    tab = _review(open_tab, reviewer, project, c)
    page = tab.page
    page.focus("#actions-form [data-key=s]")
    for key, dialog in (("?", "#keys-overlay"), ("g", "#guidelines-overlay"), ("r", "#reject-panel")):
        page.keyboard.press(key)
        box = page.locator(dialog)
        assert box.get_attribute("role") == "dialog" and box.get_attribute("aria-modal") == "true"
        label = page.inner_text("#" + box.get_attribute("aria-labelledby"))
        assert label, dialog
        assert page.evaluate(f"document.querySelector('{dialog}').contains(document.activeElement)")
        # Tab stays inside, forwards and backwards.
        for _ in range(15):
            page.keyboard.press("Tab")
            assert page.evaluate(f"document.querySelector('{dialog}').contains(document.activeElement)")
        page.keyboard.press("Shift+Tab")
        assert page.evaluate(f"document.querySelector('{dialog}').contains(document.activeElement)")
        # Keys behind a modal do nothing.
        if key != "r":
            page.keyboard.press("a")
            assert not Decision.objects.exists()
        page.keyboard.press("Escape")
        assert not box.is_visible()
        assert page.evaluate("document.activeElement.dataset.key") == "s", dialog
    tab.assert_no_csp_violations()


def test_reject_without_a_reason_says_so_in_words(open_tab, project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    tab = _review(open_tab, reviewer, project, c)
    page = tab.page
    page.keyboard.press("r")
    page.keyboard.press("Enter")
    error = page.locator("#reject-error")
    assert error.is_visible()
    assert error.inner_text() == "Choose a reason for the rejection: press its key (1–9 or 0) or click it."
    page.click("#reject-panel button.bad")
    assert "hallucination" not in error.inner_text() and "_" not in error.inner_text()
    assert not Decision.objects.exists()
    page.keyboard.press("3")
    assert error.inner_text() == ""
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Nothing left for you to review")
    assert Decision.objects.get(candidate=c).reason == "modality"
    tab.assert_no_csp_violations()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_focus_ring_and_contrast(open_tab, project, reviewer, make_candidates, scheme):
    (c,) = make_candidates(1, scores=SCORES)
    tab = _review(open_tab, reviewer, project, c, color_scheme=scheme)
    page = tab.page
    page.click("details[data-score=consistency] summary")
    # Each highlight says why on hover, and the finding lists the words it highlighted.
    titles = page.eval_on_selector_all("[data-testid=response] mark", "ms => ms.map(m => m.title)")
    assert any('Consistency · laterality: response says "left"' in t for t in titles), titles
    assert page.inner_text("details[data-score=consistency] .marked-words mark") == "left"
    assert "Grounding is good" in page.inner_text("details[data-score=consistency] .score-note")
    assert_contrast(page, READ)
    side = contrast(page, ".side .src-field .text")
    if scheme == "dark":
        assert side["bgLuminance"] < 0.05, side  # the side panel is not white in a dark room
    else:
        assert side["bgLuminance"] > 0.9, side
    # A keyboard focus ring: at least 2px, and it stands out from the bar it is drawn on.
    page.focus("#actions-form [data-key=s]")
    page.keyboard.press("Tab")
    ring = page.evaluate("""() => {
        const s = getComputedStyle(document.activeElement);
        return {width: parseFloat(s.outlineWidth), style: s.outlineStyle, color: s.outlineColor,
                bar: getComputedStyle(document.querySelector('.action-bar')).backgroundColor};
    }""")
    assert ring["width"] >= 2 and ring["style"] != "none", ring
    assert ratio(ring["color"], ring["bar"]) >= 3, ring  # WCAG's 3:1 for focus indicators
    tab.shot(f"review-focus-{scheme}")


def test_theme_toggle_is_remembered(open_tab, project, reviewer, make_candidates):
    (c,) = make_candidates(1, scores=SCORES)
    tab = _review(open_tab, reviewer, project, c)
    page = tab.page
    light = contrast(page, ".side .src-field .text")["bgLuminance"]
    toggle = page.locator("#theme-toggle")
    assert toggle.get_attribute("aria-pressed") == "false"
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    page.reload()
    page.wait_for_selector("#review-pane[data-ready='1']")
    assert page.evaluate("localStorage.getItem('medmax-theme')") == "dark"
    assert page.locator("#theme-toggle").get_attribute("aria-pressed") == "true"
    dark = contrast(page, ".side .src-field .text")["bgLuminance"]
    assert light > 0.9 and dark < 0.05, (light, dark)
    page.click("details[data-score=consistency] summary")
    tab.shot("review-dark")
    page.locator("#theme-toggle").click()
    assert page.evaluate("localStorage.getItem('medmax-theme')") == "light"
    tab.assert_no_csp_violations()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_nothing_serious(
    open_tab, project, reviewer, reviewer2, adjudicator, admin_user, two_reviews,
    make_candidates, scheme,
):
    review_me, disputed = make_candidates(2, priorities=[0.1, 0.9], scores=SCORES)
    for user in (reviewer, reviewer2):
        claims.claim_candidate(candidate=disputed, user=user)
    services.decision_record(candidate_id=disputed.pk, user=reviewer, action="approve", version=1)
    services.decision_record(candidate_id=disputed.pk, user=reviewer2, action="reject",
                             version=1, reason="laterality")
    tab = _review(open_tab, reviewer, project, review_me, color_scheme=scheme, bypass_csp=True)
    page = tab.page
    page.click("details[data-score=consistency] summary")
    found = {"review": axe_serious(page)}
    page.keyboard.press("r")
    page.keyboard.press("Enter")  # no reason yet: the dialog says so
    found["reject dialog"] = axe_serious(page)
    tab.shot(f"review-reject-{scheme}")
    page.keyboard.press("Escape")
    page.keyboard.press("e")
    page.locator("#edit-response").fill("The right lung has an opacity.")
    page.wait_for_selector("#edit-diff ins")
    found["editor"] = axe_serious(page)
    tab.shot(f"review-editor-{scheme}")

    page.context.clear_cookies()
    tab.login(adjudicator)
    tab.goto(f"/p/{project.slug}/review/adjudication/")
    found["adjudication queue"] = axe_serious(page)
    tab.goto(f"/p/{project.slug}/review/adjudication/{disputed.pk}/")
    page.wait_for_selector("[data-testid=version]")
    found["adjudication"] = axe_serious(page)

    page.context.clear_cookies()
    tab.login(admin_user)
    tab.goto(f"/p/{project.slug}/candidates/")
    page.wait_for_selector(".browse-table")
    found["candidate browser"] = axe_serious(page)
    tab.shot(f"browse-{scheme}")
    assert {k: v for k, v in found.items() if v} == {}
    assert [e for e in tab.console_errors if "Error" in e] == []  # every page's scripts ran
