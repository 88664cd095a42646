"""Drafts on the review screen: nothing typed is lost or dropped without the clinician saying so."""

import time

import pytest

from medmax_review.review.models import Candidate, Decision, Draft

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EDITED = "The right lung has an opacity."


def _pane(page, candidate):
    page.wait_for_selector(f"#review-pane[data-ready='1'][data-candidate='{candidate.pk}']")


def _draft_text(candidate, user, timeout=5.0):
    """The stored draft's response, waiting for a request still on its way."""
    deadline = time.monotonic() + timeout
    while True:
        draft = Draft.objects.filter(candidate=candidate, reviewer=user).first()
        if (draft and draft.response == EDITED) or time.monotonic() > deadline:
            return draft.response if draft else None
        time.sleep(0.1)


def _typed_not_saved(open_tab, project, reviewer, candidate):
    """A tab on the candidate's review page with EDITED typed in the editor, not yet autosaved."""
    tab = open_tab()
    tab.login(reviewer)
    tab.goto(f"/p/{project.slug}/review/{candidate.pk}/")
    _pane(tab.page, candidate)
    tab.page.keyboard.press("e")
    tab.page.locator("#edit-response").fill(EDITED)
    return tab


def _edit_and_autosave(page):
    page.keyboard.press("e")
    page.locator("#edit-response").fill(EDITED)
    page.wait_for_selector("#draft-status:has-text('draft saved')")


def test_leaving_the_editor_asks_to_keep_the_draft_and_approve_asks_which_text(
    open_tab, project, reviewer, make_candidates
):
    first, second, third = make_candidates(3, priorities=[0.9, 0.5, 0.1])
    tab = open_tab()
    page = tab.page
    tab.login(reviewer)
    tab.goto(f"/p/{project.slug}/review/{first.pk}/")
    _pane(page, first)

    # Esc after the autosave: the editor asks, and Esc again goes back to editing.
    _edit_and_autosave(page)
    page.keyboard.press("Escape")
    dialog = page.locator("#keep-draft")
    assert dialog.is_visible() and dialog.get_attribute("aria-modal") == "true"
    tab.shot("review-keep-draft")
    page.keyboard.press("Escape")
    assert not dialog.is_visible()
    assert page.evaluate("document.activeElement.id") == "edit-response"

    # Keep: the editor closes, the draft stays; `a` then asks which text is meant.
    page.keyboard.press("Escape")
    page.keyboard.press("k")
    assert not page.is_visible("#edit-form") and page.is_visible("#draft-note")
    assert Draft.objects.get(candidate=first).response == EDITED
    page.keyboard.press("a")
    assert page.is_visible("#approve-which")
    tab.shot("review-approve-which")
    assert not Decision.objects.exists()
    # The model's text: approved as the model wrote it, the draft dropped because they said so.
    page.keyboard.press("m")
    _pane(page, second)
    first.refresh_from_db()
    assert first.status == "approved" and first.response == "The left lung is clear."
    assert not Draft.objects.filter(candidate=first).exists()

    # The draft: approved as an edit. The button is clicked this time, not pressed.
    _edit_and_autosave(page)
    page.keyboard.press("Escape")
    page.click("#keep-draft [data-choice=keep]")
    page.click("#actions-form [data-key=a]")
    page.click("#approve-which [data-choice=draft]")
    _pane(page, third)
    second.refresh_from_db()
    assert second.status == "approved" and second.response == EDITED
    assert Decision.objects.get(candidate=second).action == "edit"

    # Discard: the edit is gone and is not restored by a reload.
    _edit_and_autosave(page)
    page.keyboard.press("Escape")
    page.keyboard.press("d")
    assert not page.is_visible("#edit-form") and not page.is_visible("#draft-note")
    page.wait_for_selector("#draft-status:text-is('no draft')")
    page.reload()
    _pane(page, third)
    assert not page.is_visible("#edit-form")
    # An unchanged editor closes without a question.
    page.keyboard.press("e")
    page.keyboard.press("Escape")
    assert not page.is_visible("#edit-form") and not page.is_visible("#keep-draft")
    page.keyboard.press("a")  # no draft left, so no question either
    page.wait_for_selector("text=Nothing left for you to review")
    assert Candidate.objects.get(pk=third.pk).response == "The left lung is clear."
    tab.assert_no_csp_violations()


def test_reload_right_after_typing_loses_nothing(open_tab, project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    tab = _typed_not_saved(open_tab, project, reviewer, c)
    page = tab.page
    page.reload()  # well inside the 800 ms autosave delay
    _pane(page, c)
    assert page.is_visible("#edit-form")
    assert page.locator("#edit-response").input_value() == EDITED
    assert _draft_text(c, reviewer) == EDITED
    tab.assert_no_csp_violations()


def test_leaving_the_page_sends_the_draft(open_tab, project, reviewer, make_candidates):
    """The beacon on pagehide reaches the draft endpoint (with its CSRF token) on its own."""
    (c,) = make_candidates(1)
    tab = _typed_not_saved(open_tab, project, reviewer, c)
    tab.goto("/")  # another page, in the same tab, well before the autosave would run
    assert _draft_text(c, reviewer) == EDITED
    draft = Draft.objects.get(candidate=c, reviewer=reviewer)
    assert draft.base_version == c.version


def test_hiding_the_tab_sends_the_draft(open_tab, project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    tab = _typed_not_saved(open_tab, project, reviewer, c)
    page = tab.page
    sent = []
    page.on("request", lambda r: sent.append((r.url, r.resource_type)) if "/draft/" in r.url else None)
    # What the browser does when the clinician switches tabs or locks the screen.
    page.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    assert _draft_text(c, reviewer) == EDITED
    assert sent and sent[0][1] == "ping", sent  # the beacon, not the autosave (an "xhr")
