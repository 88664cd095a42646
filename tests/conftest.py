"""Shared fixtures: a cast (admin, adjudicator, reviewer, outsider) and a project with records.

The suite runs against PostgreSQL and Redis (the Makefile sets DATABASE_URL and
CELERY_BROKER_URL); a test needing a service that is absent fails in CI and skips locally.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection

from medmax_review.projects import services as project_services
from medmax_review.projects.models import ADJUDICATOR, ADMIN, REVIEWER

ROOT = Path(__file__).resolve().parent.parent
DEMO_DATA = ROOT / "demo_data"
ARTIFACTS = ROOT / "test-artifacts"  # screenshots from browser tests (not committed)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
PASSWORD = "correct horse battery staple"


def require_service(what: str) -> None:
    """Fail in CI, skip locally, naming the missing service."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} is not available here")


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    from django.core.cache import cache

    cache.clear()  # pages cache their counts: no test sees another's
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    # Files the set-up commands keep (the accounts list) stay out of the checkout's var/.
    settings.VAR_DIR = tmp_path / "var"


class _CacheClock:
    def __init__(self):
        self.now = time.time()

    def time(self):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """The local-memory cache's own clock (nobody else's), empty at the start: advance
    `clock.now` to expire what a page cached."""
    from django.core.cache import cache
    from django.core.cache.backends import locmem

    cache.clear()
    fake = _CacheClock()
    monkeypatch.setattr(locmem, "time", fake)
    yield fake
    cache.clear()


@pytest.fixture
def demo_data() -> Path:
    return DEMO_DATA


@pytest.fixture
def project(db):
    project, _ = project_services.project_get_or_create(slug="chest", name="Chest VQA")
    return project


def _member(project, username, role, credentialed=False):
    user = project_services.user_create(
        username=username, password=PASSWORD, credentialed=credentialed
    )
    if role:
        project_services.membership_set(project=project, user=user, role=role)
    return user


@pytest.fixture
def admin_user(project):
    return _member(project, "alice_admin", ADMIN, credentialed=True)


@pytest.fixture
def adjudicator(project):
    return _member(project, "adam_adjudicator", ADJUDICATOR)


@pytest.fixture
def reviewer(project):
    return _member(project, "rita_reviewer", REVIEWER)


@pytest.fixture
def reviewer2(project):
    return _member(project, "rob_reviewer", REVIEWER)


@pytest.fixture
def outsider(project):
    return _member(project, "olga_outsider", None)


def process_stop(process, timeout: float = 15) -> None:
    """Stop a subprocess this suite started: politely, then for good."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _redis_reachable(url: str) -> bool:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return True
    except redis.RedisError:
        return False


@pytest.fixture
def worker_factory(transactional_db, settings, tmp_path):
    """Start real Celery worker processes on Redis that use this test's database and media.

    Each call starts one more worker (`pool`: solo, or prefork to have a pool child) that
    consumes every queue unless `queues` names some (comma-separated, as for -Q); extra
    keyword arguments become its environment.
    """
    broker = settings.CELERY_BROKER_URL
    if not broker.startswith("redis://") or not _redis_reachable(broker):
        require_service("Redis (CELERY_BROKER_URL=redis://...)")
    if connection.vendor != "postgresql":
        require_service("PostgreSQL (DATABASE_URL=postgres://...)")
    redis.Redis.from_url(broker).flushdb()  # the suite's own Redis db: no stale messages
    database = connection.settings_dict
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    started = []

    def start(pool: str = "solo", queues: str = "", **env_extra) -> subprocess.Popen:
        env = {
            **os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": broker,
            "CELERY_TASK_ALWAYS_EAGER": "False", "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            **env_extra,
        }
        env.pop("TEST_DATABASE_NAME", None)
        log = open(tmp_path / f"worker{len(started)}.log", "wb")  # closed at teardown
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "medmax_review", "worker", "-P", pool,
             "-c", "1", "--without-mingle", "--without-gossip", "-l", "INFO",
             *(["-Q", queues] if queues else [])],
            cwd=django_settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        started.append((process, log))
        return process

    yield start
    for process, log in started:
        process_stop(process)
        log.close()


@pytest.fixture
def worker(worker_factory):
    """One real Celery worker on Redis, using this test's database and media."""
    return worker_factory()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session, driven by Playwright's sync API."""
    if not Path(CHROMIUM).exists():
        require_service(f"Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread from here on; the ORM calls in
    # test bodies are still plain synchronous code, so Django's async guard is lifted.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Tab:
    """A page that records console errors (CSP violations show up there)."""

    def __init__(self, page, base_url):
        self.page, self.base_url, self.console_errors = page, base_url, []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.console_errors.append(str(e)))

    def _console(self, message):
        if message.type in ("error", "warning"):
            self.console_errors.append(f"{message.text} @ {message.location}")

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
    """Open tabs on the live server; pass a tab's context to share its session (a second tab).

    Other keywords go to the new context: color_scheme="dark" for a system in the dark theme;
    bypass_csp=True only where a test injects a script of its own (axe-core).
    """
    contexts = []

    def open_(context=None, **options):
        if context is None:
            context = browser.new_context(viewport={"width": 1440, "height": 900}, **options)
            contexts.append(context)
        return Tab(context.new_page(), live_server.url)

    yield open_
    for context in contexts:
        context.close()
    # ORM calls made while Playwright's loop ran got their own connections: close them.
    connection.close()
