import io
import json
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings as django_settings
from django.db import connection
from PIL import Image

from medmax_review.celery import app
from tests.conftest import require_service


def png_bytes(size=(8, 8), color=0, mode="L") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format="PNG")
    return out.getvalue()


def write_jsonl(path: Path, rows) -> Path:
    """rows: dicts (dumped as JSON) or raw strings (written as they are)."""
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
        encoding="utf-8",
    )
    return path


@pytest.fixture
def image_folder(tmp_path) -> Path:
    folder = tmp_path / "data"
    (folder / "img").mkdir(parents=True)
    for i in range(3):
        (folder / "img" / f"{i}.png").write_bytes(png_bytes(color=i * 40))
    return folder


def demo_row(i: int, **extra) -> dict:
    return {
        "id": f"r{i}",
        "image": f"img/{i % 3}.png",
        "question": f"Question {i}?",
        "answer": "yes",
        "source": "test_set",
        "license": "CC0-1.0",
        "meta": {"n": i},
        **extra,
    }


def zip_bundle_bytes() -> bytes:
    """A ZIP of rows.jsonl (two good rows, one line of bad JSON) and its three images."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("rows.jsonl", "\n".join(json.dumps(demo_row(i)) for i in range(2)) + "\n{bad json\n")
        for i in range(3):
            zf.writestr(f"img/{i}.png", png_bytes(color=i + 5))
    return out.getvalue()


def _redis_up(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme != "redis":
        return False
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def worker(transactional_db, settings):
    """A real Celery worker process on the Redis broker, using this test's database and media."""
    if not _redis_up(settings.CELERY_BROKER_URL):
        require_service("Redis (CELERY_BROKER_URL=redis://...)")
    if connection.vendor != "postgresql":
        require_service("PostgreSQL (DATABASE_URL=postgres://...)")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_ALWAYS_EAGER": "False",
    }
    env.pop("TEST_DATABASE_NAME", None)
    app.control.purge()  # nothing left over from an earlier run
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "medmax_review", "worker", "--pool=solo",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
        cwd=django_settings.BASE_DIR, env=env,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
