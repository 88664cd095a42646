"""The README's production recipe: DEBUG off, collectstatic, gunicorn; the app serves its own
CSS and JS (whitenoise) and the review screen works. On SQLite so the server process needs no
test database of its own."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import process_stop
from tests.generation.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.worker
PORTS = range(8150, 8155)

SEED = """
from medmax_review.core import medmax
from medmax_review.generation import services as generation
from medmax_review.projects import services as projects
from medmax_review.projects.models import REVIEWER
from medmax_review.sources.services import records_import
project, _ = projects.project_get_or_create(slug="prod")
records_import(project=project, path="demo_data/skimage.jsonl")
job = generation.job_create(project=project, task=medmax.IMAGE_CAPTIONING, backend="template")
generation.job_run(job_id=job.pk)
user = projects.user_create(username="rita", password="a long enough password")
projects.membership_set(project=project, user=user, role=REVIEWER)
"""


@pytest.fixture
def production_env(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "TEST_DATABASE_NAME", "MEDIA_ROOT",
                        "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(DEBUG="False", SECRET_KEY="x" * 60, ALLOWED_HOSTS="127.0.0.1",
               SECURE_SSL_REDIRECT="False", MEDMAX_VAR_DIR=str(tmp_path / "var"),
               STATIC_ROOT=str(tmp_path / "static"), CELERY_TASK_ALWAYS_EAGER="True")
    return env


def _manage(env, *args):
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


class _Session:
    """Plain HTTP on loopback: the production cookies are Secure, so they are sent by hand."""

    def __init__(self, base: str):
        self.http = httpx.Client(base_url=base, follow_redirects=False, timeout=10)
        self.cookies: dict[str, str] = {}

    def request(self, method, path, **kwargs):
        header = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self.http.request(method, path, headers={"Cookie": header}, **kwargs)
        for cookie in response.headers.get_list("set-cookie"):
            name, _, rest = cookie.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return response


def test_gunicorn_with_debug_off_serves_the_review_screen_and_its_static_files(production_env):
    _manage(production_env, "migrate", "--no-input", "-v0")
    _manage(production_env, "collectstatic", "--no-input", "-v0")
    _manage(production_env, "shell", "--no-imports", "-c", SEED)
    port = free_port(PORTS)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "medmax_review.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--access-logfile", "-"],
        cwd=ROOT, env=production_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        session = _Session(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            try:
                login = session.request("GET", "/login/")
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read().decode()
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.3)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        signed_in = session.request("POST", "/login/", data={
            "username": "rita", "password": "a long enough password",
            "csrfmiddlewaretoken": token})
        assert signed_in.status_code == 302, signed_in.text[:500]

        page = session.request("GET", "/p/prod/review/")
        if page.status_code == 302:
            page = session.request("GET", page.headers["location"])
        assert page.status_code == 200
        assert "Content-Security-Policy" in page.headers

        assets = re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', page.text)
        assert any(a.endswith(".css") for a in assets) and any(a.endswith(".js") for a in assets)
        for asset in assets:
            # Collected under hashed names, served compressed and cached for good.
            assert re.search(r"\.[0-9a-f]{12}\.(css|js)$", asset), asset
            response = session.http.get(asset, headers={"Accept-Encoding": "gzip"})
            assert response.status_code == 200, asset
            assert response.headers["content-type"].startswith(
                "text/css" if asset.endswith(".css") else "text/javascript"), asset
            assert "immutable" in response.headers.get("cache-control", "")
            assert response.content
        htmx = [a for a in assets if "htmx" in a]
        assert htmx, "the review screen loads htmx from our own static files"
    finally:
        process_stop(server)
