"""Faults on the real services: a worker killed mid-import, a pool child killed mid-scoring,
the broker down while generation commits, Redis restarted under a running worker. Afterwards
every run finishes (or fails with a reason) and every candidate is scored."""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile

from medmax_review.core import medmax
from medmax_review.generation import services as generation
from medmax_review.review.models import Candidate
from medmax_review.scoring import services as scoring
from medmax_review.sources import services as sources
from medmax_review.sources.models import ImportRun, SourceRecord
from tests.conftest import DEMO_DATA, process_stop, require_service

pytestmark = pytest.mark.worker


def _until(check, within: float, what: str, every: float = 0.2):
    give_up = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < give_up, f"gave up waiting for {what}"
        time.sleep(every)


def _rows_zip_bytes(count: int) -> bytes:
    """`count` rows over the real VQA-RAD images, as one JSONL with its images in a ZIP."""
    import io
    import zipfile

    source = [json.loads(line) for line in open(DEMO_DATA / "vqa_rad.jsonl", encoding="utf-8")]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("rows.jsonl", "".join(
            json.dumps({**source[i % len(source)], "id": f"row-{i}"}) + "\n" for i in range(count)))
        for name in {r["image"] for r in source}:
            zf.write(DEMO_DATA / name, name)
    return out.getvalue()


ROWS = 20_000


def test_worker_killed_mid_import_is_taken_over_and_imports_each_row_once(
    project, admin_user, worker_factory
):
    # Small batches: the import is still going when the first worker dies, however fast it is.
    env = {"IMPORT_STALE_SECONDS": "3", "CELERY_VISIBILITY_TIMEOUT": "3", "IMPORT_BATCH_ROWS": "100"}
    first = worker_factory(**env)
    upload = SimpleUploadedFile("rows.zip", _rows_zip_bytes(ROWS))
    run = sources.import_run_launch(project=project, upload=upload, fmt="auto", options={},
                                    user=admin_user)
    _until(lambda: ImportRun.objects.get(pk=run.pk).rows_done >= 500, 120, "the import to start")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed = ImportRun.objects.get(pk=run.pk)
    assert killed.status == ImportRun.RUNNING and killed.rows_done < ROWS

    worker_factory(**env)  # the message comes back; the silent run is taken over

    finished = _until(lambda: (r := ImportRun.objects.get(pk=run.pk)).is_finished and r, 240,
                      "the import to finish on the second worker")
    assert finished.status == ImportRun.DONE, finished.errors[:3]
    assert SourceRecord.objects.filter(project=project).count() == ROWS
    assert finished.created + finished.duplicates == ROWS and finished.rows_done == ROWS


def _generated(project, demo_data, limit, samples=1):
    sources.records_import(project=project, path=demo_data / "vqa_rad.jsonl")
    job = generation.job_create(project=project, task=medmax.VQA, backend="template",
                                filters={"limit": limit}, samples=samples)
    return job


def _use_broker(url: str) -> None:
    """Point this process's producer at another broker (a fresh connection pool)."""
    from medmax_review.celery import app

    # The next send builds its connections and producers for the new URL (the old ones are
    # left to the garbage collector: closing them would close the pool kombu shares).
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.broker_url = url
    os.environ["CELERY_BROKER_URL"] = url  # celery reads this before its own setting


def test_pool_child_killed_mid_scoring_is_scored_after_all(
    project, demo_data, worker_factory, settings
):
    job = _generated(project, demo_data, 150, samples=12)
    generation.job_run(job_id=job.pk)
    # Only the one message below may score them: drop the scoring the job itself sent.
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    ids = list(Candidate.objects.filter(job=job).values_list("id", flat=True))
    unscored = Candidate.objects.filter(pk__in=ids, scores={})
    Candidate.objects.filter(pk__in=ids).update(scores={})
    worker = worker_factory(pool="prefork", CELERY_VISIBILITY_TIMEOUT="3")
    _until(lambda: subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True).stdout,
           60, "the pool child")

    from medmax_review.scoring.tasks import score_candidates
    score_candidates.delay(ids)  # one message: the child is caught in the middle of it
    _until(lambda: unscored.count() < len(ids), 60, "scoring to start")
    children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True)
    for pid in children.stdout.split():
        os.kill(int(pid), signal.SIGKILL)
    assert unscored.exists(), "the child finished before it could be killed"

    _until(lambda: not unscored.exists(), 180, "every candidate to be scored once the message came back")
    assert worker.poll() is None, "the worker itself survives the loss of its child"


def test_broker_down_while_generation_commits_then_the_sweep_scores(
    project, demo_data, worker_factory, settings
):
    from medmax_review.generation.models import GenerationChunk, GenerationJob

    job = _generated(project, demo_data, 40)
    good = settings.CELERY_BROKER_URL
    # The broker is unreachable while the job runs: its scoring messages are not sent (and
    # the run may break off where it must send one of its own).
    _use_broker("redis://127.0.0.1:6399/0")
    try:
        generation.job_run(job_id=job.pk)
    except Exception:  # noqa: BLE001 - whatever kombu raises for a dead broker
        pass
    finally:
        _use_broker(good)
    saved = Candidate.objects.filter(job=job)
    assert saved.exists() and not saved.exclude(scores={}).exists()

    worker_factory()
    if GenerationJob.objects.get(pk=job.pk).status != "done":
        # the run broke off: the jobs sweep has a worker take it over and finish it
        GenerationJob.objects.filter(pk=job.pk).update(heartbeat_at=None)
        GenerationChunk.objects.filter(job=job).update(heartbeat_at=None)
        assert generation.jobs_resend() == 1
    _until(lambda: GenerationJob.objects.get(pk=job.pk).status == "done", 120, "the job")
    assert scoring.unscored_resend(older_than_seconds=0) >= 1
    _until(lambda: not saved.filter(scores={}).exists(), 120, "the resent scoring")
    assert Candidate.objects.filter(job=job).count() == 40


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of this test's own on another port, so it can be restarted."""
    server = shutil.which("redis-server")
    if not server:
        require_service("redis-server")
    port = 6393

    def start():
        return subprocess.Popen(
            [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    process = start()
    client = redis.Redis(port=port)
    _until(lambda: _pings(client), 10, "the private Redis")
    holder = {"process": process}

    def restart():
        process_stop(holder["process"])
        time.sleep(2)
        holder["process"] = start()
        _until(lambda: _pings(client), 10, "the private Redis to come back")

    yield f"redis://127.0.0.1:{port}/0", restart
    process_stop(holder["process"])


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def test_worker_survives_a_redis_restart(project, demo_data, worker_factory, private_redis, settings):
    url, restart = private_redis
    worker = worker_factory(CELERY_BROKER_URL=url)
    job = _generated(project, demo_data, 5)
    Candidate.objects.all().delete()
    time.sleep(3)  # the worker is up and consuming

    restart()
    time.sleep(5)  # it notices the lost connection and reconnects

    assert worker.poll() is None, "the worker exited after the Redis restart"
    good = settings.CELERY_BROKER_URL
    _use_broker(url)
    try:
        from medmax_review.generation.tasks import run_job
        run_job.delay(job.pk)
    finally:
        _use_broker(good)
    from medmax_review.generation.models import GenerationJob
    _until(lambda: GenerationJob.objects.get(pk=job.pk).status == "done", 120,
           "the job sent after the restart")
