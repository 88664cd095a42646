"""Browser tests: the live Django server and headless Chromium through Playwright's sync API."""

import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test
# body are still synchronous and safe here.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
os.environ.setdefault("DJANGO_LIVE_TEST_SERVER_ADDRESS", "127.0.0.1:8150")

from tests.conftest import PASSWORD  # noqa: E402
from tests.review.review_fixtures import image, make_candidates, two_reviews  # noqa: E402, F401

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


# One Playwright (and one Chromium) per test session: other suites import this fixture into
# their modules, which makes separate fixture instances, and a second sync Playwright cannot
# start while the first one's event loop runs.
_SHARED: dict = {}


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        from tests.conftest import require_service

        require_service("Chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    owner = not _SHARED
    if owner:
        _SHARED["playwright"] = sync_playwright().start()
        _SHARED["browser"] = _SHARED["playwright"].chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
    yield _SHARED["browser"]
    if owner:
        _SHARED.pop("browser").close()
        _SHARED.pop("playwright").stop()


class Tab:
    """A page that records console errors (CSP violations show up there)."""

    def __init__(self, page, base_url):
        self.page, self.base_url, self.console_errors = page, base_url, []
        page.on("console", lambda m: m.type in ("error", "warning") and self.console_errors.append(f"{m.text} @ {m.location}"))
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))

    def goto(self, path):
        self.page.goto(self.base_url + path)

    def login(self, user):
        self.goto("/login/")
        self.page.fill("input[name=username]", user.username)
        self.page.fill("input[name=password]", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(lambda url: "/login/" not in url)

    def shot(self, name):
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    def assert_no_csp_violations(self):
        csp = [m for m in self.console_errors if "Content Security Policy" in m or "Refused to" in m]
        assert csp == [], csp


@pytest.fixture
def open_tab(browser, live_server):
    contexts = []

    def open_(context=None):
        if context is None:
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            contexts.append(context)
        return Tab(context.new_page(), live_server.url)

    yield open_
    for c in contexts:
        c.close()
