"""The upload page in a real browser: upload a ZIP, watch the progress, read the report."""

import os
import socket

import pytest
from django.db import connections
from pytest_django.live_server_helper import LiveServer

from medmax_review.sources.models import ImportRun
from tests.conftest import PASSWORD, require_service
from tests.sources.conftest import zip_bundle_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.worker]

CHROMIUM = "/usr/bin/chromium"
PORTS = range(8110, 8120)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def server(transactional_db):
    port = next((p for p in PORTS if not _listening(p)), None)
    assert port is not None, f"every port in {PORTS} is taken"
    live = LiveServer(f"127.0.0.1:{port}")
    yield live
    live.stop()


def _console_error(page, message) -> None:
    # Browsers ask for /favicon.ico on their own; that 404 is not the page's doing.
    if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
        page.console_errors.append(message.text)


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        require_service("Chromium at /usr/bin/chromium")
    # Playwright runs an event loop in this thread; the ORM calls below are plain sync code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.console_errors = []
        page.on("console", lambda m: _console_error(page, m))
        yield page
        browser.close()
        # ORM calls made while Playwright's loop runs get their own connections: close them.
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def test_import_upload_in_browser_shows_progress_then_report(
    server, project, admin_user, worker, tmp_path, page
):
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(zip_bundle_bytes())
    page.goto(f"{server.url}/login/")
    page.fill("input[name=username]", admin_user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{server.url}/p/{project.slug}/import/")

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
    assert page.console_errors == [], "\n".join(page.console_errors)

    page.goto(f"{server.url}/p/{project.slug}/import/")
    assert "bundle.zip" in page.locator(".import-table").inner_text()
