"""Rejection analytics and regeneration in a real browser under the app's CSP."""

import pytest

from medmax_review.generation.models import GenerationJob
from tests.generation.test_regeneration import rejected  # noqa: F401
from tests.review.test_analytics import known_rates  # noqa: F401

pytestmark = [pytest.mark.e2e]


def _signed_in_at(open_tab, user, path):
    tab = open_tab()
    tab.login(user)
    tab.goto(path)
    return tab, tab.page


def test_rejection_analytics_in_browser_drills_down(open_tab, known_rates, adjudicator):  # noqa: F811
    tab, page = _signed_in_at(open_tab, adjudicator, f"/p/{known_rates.slug}/candidates/stats/")
    page.click("text=rejections")
    page.wait_for_url(lambda url: "/rejections/" in url)
    template_chart = page.locator("#by-template svg").first
    assert template_chart.locator("rect.val").count() == 3
    assert template_chart.locator("line.whisker").count() == 3
    assert template_chart.locator("g.marked").count() == 1  # v2, worse than v1
    tab.shot("rejection-analytics")
    # The v2 label in the chart opens its rejected candidates.
    template_chart.locator("a", has_text="vqa/default@v2").click()
    page.wait_for_url(lambda url: "/candidates/?" in url and "status=rejected" in url)
    assert "12 match" in page.locator(".browse-count").inner_text()
    tab.assert_no_csp_violations()


def test_regenerate_from_the_browser_page(open_tab, project, rejected, admin_user):  # noqa: F811
    tab, page = _signed_in_at(open_tab, admin_user,
                              f"/p/{project.slug}/candidates/?status=rejected&reason=hallucination")
    page.click("text=Regenerate these…")
    page.wait_for_url(lambda url: "/regenerate/" in url)
    assert "<b>2</b> candidates" in page.content()
    page.select_option("select[name=regenerate-backend]", "template")
    page.click("button[name=confirm]")
    page.wait_for_url(lambda url: url.endswith("/generation/"))
    job = GenerationJob.objects.exclude(regenerates={}).get()
    assert job.total == 2 and len(job.regenerates) == 2
    tab.assert_no_csp_violations()
