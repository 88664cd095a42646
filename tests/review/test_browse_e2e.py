"""The candidate browser and statistics page in a real browser (live server, headless Chromium)."""

import pytest

from medmax_review.review import browse_selectors
from medmax_review.review.models import APPROVE, APPROVED, REJECT, REJECTED
from tests.review.test_browse_data import add_candidates, decide, score

pytestmark = [pytest.mark.e2e]

@pytest.fixture
def tab(open_tab):
    return open_tab()


def test_candidate_browse_in_browser_filters_with_htmx_and_pages(
    tab, project, admin_user, monkeypatch
):
    monkeypatch.setattr(browse_selectors, "PAGE_SIZE", 5)
    captions = add_candidates(project, 7, task="image_captioning")
    add_candidates(project, 3, task="vqa")
    tab.login(admin_user)
    tab.goto(f"/p/{project.slug}/candidates/")
    page = tab.page
    # A marker on window survives only if the filter swaps the results without a reload.
    page.evaluate("window.notReloaded = true")
    page.select_option("select[name=task]", "image_captioning")
    page.wait_for_url(lambda url: "task=image_captioning" in url)
    page.wait_for_function("document.querySelector('.browse-count').textContent.includes('7 match')")
    assert page.evaluate("window.notReloaded") is True
    assert "&status=" not in page.url  # empty fields stay out of the pushed address
    first = page.locator("#browse-results tbody td:first-child a").all_inner_texts()
    page.click("a[rel=next]")
    page.wait_for_url(lambda url: "cursor=" in url)
    page.wait_for_function("document.querySelectorAll('#browse-results tbody tr').length === 2")
    second = page.locator("#browse-results tbody td:first-child a").all_inner_texts()
    assert page.evaluate("window.notReloaded") is True
    assert sorted(int(i) for i in first + second) == sorted(c.id for c in captions)
    page.go_back()
    page.wait_for_function("document.querySelectorAll('#browse-results tbody tr').length === 5")
    tab.assert_no_csp_violations()
    assert [m for m in tab.console_errors if "favicon" not in m] == []


def test_project_stats_in_browser_draws_charts(tab, project, admin_user, reviewer, reviewer2):
    for c in add_candidates(project, 3, status=APPROVED, scores={"grounding": score(0.9, "good")}):
        decide(c, reviewer, APPROVE)
        decide(c, reviewer2, APPROVE)
    for c in add_candidates(project, 2, status=REJECTED, scores={"grounding": score(0.1, "poor")}):
        decide(c, reviewer, REJECT)
        decide(c, reviewer2, APPROVE)
    tab.login(admin_user)
    tab.goto(f"/p/{project.slug}/candidates/stats/")
    page = tab.page
    approved = page.locator("#progress rect.seg-approved")
    assert approved.count() == 2  # "all tasks" and "vqa"
    assert approved.first.bounding_box()["width"] > 10
    page.click("#progress .legend-item[data-series=approved]")
    assert page.locator("#progress .chart.focused").count() == 1
    assert page.locator("#progress rect.seg.active").count() == 2
    tab.assert_no_csp_violations()
    assert [m for m in tab.console_errors if "favicon" not in m] == []
