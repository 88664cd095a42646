"""The export page in a real browser: a stalled version, retried by an admin, then done."""

import pytest

from medmax_review.exports.models import DatasetVersion
from tests.exports.test_takeover import died_mid_build, partials

pytestmark = [pytest.mark.e2e, pytest.mark.worker]


def test_export_detail_stalled_version_retried_in_browser_until_done(
    open_tab, project, admin_user, vqa_rad, worker
):
    # given a version whose worker died five minutes ago and whose task was lost
    version, folder = died_mid_build(project, silent_for=300)
    tab = open_tab()
    page = tab.page
    tab.login(admin_user)
    tab.goto(f"/p/{project.slug}/exports/v{version.number}/")
    # then the page says so instead of showing a progress that never moves
    assert "No progress for 30" in page.locator(".export-stale").inner_text()
    tab.shot("export-stalled")
    # when the admin retries it, a worker takes it over and the page follows it to the end
    page.click(".export-retry button")
    page.wait_for_selector("#export-progress[data-status=done]", timeout=60_000)
    assert "150 rows published" in page.locator("#export-progress").inner_text()
    rebuilt = DatasetVersion.objects.get(pk=version.pk)
    assert (rebuilt.status, rebuilt.number, rebuilt.attempts) == ("done", 1, 2)
    assert partials(folder) == []
    tab.assert_no_csp_violations()
    assert tab.console_errors == [], "\n".join(tab.console_errors)
