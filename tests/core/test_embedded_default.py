"""The zero-setup default: SQLite under var/ and kombu's filesystem broker, with a real worker.

This is what `make demo` runs; the rest of the suite runs on PostgreSQL and Redis.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import process_stop

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.worker

REVIEW_ONE = """
from django.contrib.auth import get_user_model
from medmax_review.projects.models import Project
from medmax_review.review import claims, services
project = Project.objects.get(slug="demo")
reviewer = get_user_model().objects.get(username="reviewer")
candidate = claims.claim_next(project=project, user=reviewer)
services.decision_record(candidate_id=candidate.pk, user=reviewer, action="approve",
                         version=candidate.version)
print("approved", candidate.pk)
"""

JOB_STATE = """
import json
from medmax_review.generation.models import GenerationJob
from medmax_review.review.models import Candidate
job = GenerationJob.objects.filter(task="visual_chat", backend="template").first()
scored = Candidate.objects.filter(job=job).exclude(scores={}).count() if job else 0
print(json.dumps({"status": job.status if job else None, "done": job.done if job else 0,
                  "scored": scored}))
"""


@pytest.fixture
def embedded_env(tmp_path):
    env = {
        k: v for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "TEST_DATABASE_NAME",
                     "DJANGO_ALLOW_ASYNC_UNSAFE", "MEDIA_ROOT")
    }
    env["MEDMAX_VAR_DIR"] = str(tmp_path / "var")
    return env


def _manage(env, *args) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_embedded_default_runs_the_whole_path_with_a_worker(embedded_env, tmp_path):
    # given a fresh var/ with the demo loaded on SQLite
    _manage(embedded_env, "migrate", "--no-input", "-v0")
    demo = _manage(embedded_env, "load_demo")
    assert "vqa: 287 candidates generated" in demo
    assert (tmp_path / "var" / "medmax.sqlite3").exists()

    # when a job is enqueued through the filesystem broker and a separate worker process runs it
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "medmax_review", "worker", "--pool=threads",
         "--concurrency=2", "--without-mingle", "--without-gossip", "-l", "WARNING"],
        cwd=ROOT, env=embedded_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _manage(embedded_env, "generate", "--project", "demo", "--task", "visual_chat",
                "--backend", "template", "--limit", "5")
        deadline = time.monotonic() + 180
        while True:
            state = json.loads(_manage(embedded_env, "shell", "--no-imports", "-c", JOB_STATE))
            if state["status"] == "done" and state["scored"] == state["done"]:
                break
            assert worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, f"the worker did not finish the job: {state}"
            time.sleep(1)
    finally:
        process_stop(worker)
    assert state["done"] == 5

    # then a reviewer approves a candidate and the export holds exactly that record
    approved = _manage(embedded_env, "shell", "--no-imports", "-c", REVIEW_ONE)
    assert approved.startswith("approved ")
    _manage(embedded_env, "export_dataset", "--project", "demo", "--out", str(tmp_path / "out"))
    (version,) = (tmp_path / "out").iterdir()
    (data,) = version.glob("*.jsonl")
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["text"].count("<reserved08706>") == 1
    assert (version / rows[0]["image_path"]).is_file()
