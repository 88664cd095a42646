"""The upload page in a real browser: upload a ZIP, watch the progress, read the report."""

import pytest

from medmax_review.sources.models import ImportRun
from tests.sources.conftest import zip_bundle_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.worker]


def test_import_upload_in_browser_shows_progress_then_report(
    open_tab, project, admin_user, worker, tmp_path
):
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(zip_bundle_bytes())
    tab = open_tab()
    page = tab.page
    tab.login(admin_user)
    tab.goto(f"/p/{project.slug}/import/")

    page.set_input_files("input[name=file]", str(bundle))
    page.click("[data-import-submit]")

    page.wait_for_url("**/import/runs/*/")
    # htmx polls the partial until the worker has finished.
    page.wait_for_selector("#import-progress[data-status=done]", timeout=60_000)
    report = page.locator(".import-errors").inner_text()
    assert "bundle.zip:rows.jsonl" in report and "bad JSON" in report
    assert "2" in page.locator(".stats").inner_text()
    run = ImportRun.objects.get()
    assert (run.status, run.created) == ("done", 2)
    # No CSP violation or script error on either page.
    assert tab.console_errors == [], "\n".join(tab.console_errors)

    tab.goto(f"/p/{project.slug}/import/")
    assert "bundle.zip" in page.locator(".import-table").inner_text()
