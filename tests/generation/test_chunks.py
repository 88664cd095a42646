"""A job split into chunks: several runs share it without duplicates, within the job's requests
in flight; a chunk run again creates nothing; real workers share a job, take over a killed
one's chunk, and all stop at a cancel."""

import signal
import threading
import time

import pytest
from django.db import connection
from django.db.models import Count

from medmax_review.core import medmax
from medmax_review.generation import chunks, services
from medmax_review.generation.models import GenerationChunk, GenerationJob
from medmax_review.generation.runner import request_share
from medmax_review.review.models import Candidate
from tests.generation.conftest import CountingStub, records_demo, wait_until


def _job(pk):
    return GenerationJob.objects.get(pk=pk)


def _openai_job(project, stub, limit):
    return services.job_create(project=project, task=medmax.VQA, backend="openai",
                               model="stub", base_url=stub.base_url, filters={"limit": limit})


def _no_duplicates():
    return not Candidate.objects.values("record", "task", "template_ref", "sample_index").annotate(
        n=Count("id")).filter(n__gt=1).exists()


def test_chunk_bounds_cover_every_record_once():
    assert chunks.chunk_bounds(records=10, size=4) == [(0, 4), (4, 8), (8, 10)]
    assert chunks.chunk_bounds(records=0, size=4) == [(0, 0)]


@pytest.mark.parametrize("limit", [1, 3, 8, 9])
@pytest.mark.parametrize("runners", [1, 2, 3, 5])
def test_request_share_splits_the_limit_exactly(limit, runners):
    names = [f"r{n}" for n in range(runners)]
    shares = [request_share(limit=limit, me=name,
                            elsewhere=[(other, 0) for other in names if other != name])[0]
              for name in names]
    assert sum(shares) == limit and max(shares) - min(shares) <= 1


def test_request_share_waits_for_the_others_to_shrink():
    # given another worker still holding all 8 of the job's requests
    assert request_share(limit=8, me="b", elsewhere=[("a", 8)]) == (4, 0)
    # as its requests end it keeps to its own share, and this one takes the rest
    assert request_share(limit=8, me="b", elsewhere=[("a", 5)]) == (4, 3)


def test_job_create_sends_a_task_per_chunk_after_commit(
    project, demo_records, settings, django_capture_on_commit_callbacks
):
    settings.GENERATION_CHUNK_SIZE = 4
    with django_capture_on_commit_callbacks() as callbacks:
        job = services.job_create(project=project, task=medmax.VQA, backend="template",
                                  filters={"limit": 10})
    chunk_ids = list(job.chunks.order_by("index").values_list("pk", flat=True))
    assert list(job.chunks.order_by("index").values_list("start", "stop")) == [
        (0, 4), (4, 8), (8, 10)]
    assert [callback.args for callback in callbacks] == [(job.pk, pk) for pk in chunk_ids]


def test_chunk_redelivered_creates_nothing_new(project, demo_records, settings):
    settings.GENERATION_CHUNK_SIZE = 4
    job = services.job_create(project=project, task=medmax.VQA, backend="template",
                              filters={"limit": 10}, samples=2)
    services.job_run(job_id=job.pk)
    before = _job(job.pk)
    assert (before.status, before.done, before.failed) == (GenerationJob.DONE, 20, 0)
    # given a chunk's message delivered again after its worker died (the chunk looks unrun)
    chunk = job.chunks.get(index=1)
    GenerationChunk.objects.filter(pk=chunk.pk).update(status=GenerationChunk.RUNNING,
                                                       heartbeat_at=None, runner="dead")
    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.RUNNING)
    # when it runs again
    assert services.job_run(job_id=job.pk, chunk_id=chunk.pk) == services.RAN
    # then nothing is created or counted twice, and the job is done again
    after = _job(job.pk)
    assert (after.status, after.done, after.failed, after.total) == (GenerationJob.DONE, 20, 0, 20)
    assert Candidate.objects.filter(job=job).count() == 20 and _no_duplicates()
    # and a message for a chunk already done does nothing
    assert services.job_run(job_id=job.pk, chunk_id=chunk.pk) == services.NOTHING_TO_DO


def _run_in_thread(job_id, chunk_id=None):
    def run():
        try:
            services.job_run(job_id=job_id, chunk_id=chunk_id)
        finally:
            connection.close()

    runner = threading.Thread(target=run)
    runner.start()
    return runner


def test_two_runs_share_a_job_within_its_requests_in_flight(
    transactional_db, project, demo_data, settings
):
    records_demo(project, demo_data, names=("vqa_rad.jsonl",))
    settings.GENERATION_CHUNK_SIZE = 6
    settings.LLM_CONCURRENCY = 4
    stub = CountingStub(delay=0.2)
    settings.LLM_ALLOWED_BASE_URLS = [stub.base_url]
    try:
        job = _openai_job(project, stub, limit=36)
        first, second = (_run_in_thread(job.pk, chunk.pk) for chunk in job.chunks.all()[:2])
        first.join(timeout=60)
        second.join(timeout=60)
    finally:
        stub.close()
    done = _job(job.pk)
    assert (done.status, done.done, done.failed) == (GenerationJob.DONE, 36, 0)
    assert Candidate.objects.filter(job=job).count() == 36 and _no_duplicates()
    assert len(stub.requests) == 36
    # both runs worked on it, and the server never had more than the job's four open
    assert job.chunks.values("runner").distinct().count() == 2
    assert not job.chunks.exclude(status=GenerationChunk.DONE).exists()
    assert stub.peak <= 4, stub.peak
    assert done.in_flight == 0 and done.heartbeat_at is None


# Real Celery workers on Redis ---------------------------------------------------------------

WORKER_ENV = {"GENERATION_CHUNK_SIZE": "5", "LLM_CONCURRENCY": "4", "GENERATION_BATCH_SIZE": "4",
              "CELERY_VISIBILITY_TIMEOUT": "3", "GENERATION_STALE_SECONDS": "3"}


@pytest.fixture
def counting_stub(settings):
    stub = CountingStub(delay=0.25)
    settings.LLM_ALLOWED_BASE_URLS = [stub.base_url]
    settings.GENERATION_CHUNK_SIZE = int(WORKER_ENV["GENERATION_CHUNK_SIZE"])  # job_create's
    yield stub
    stub.close()


def _env(stub):
    return {**WORKER_ENV, "LLM_ALLOWED_BASE_URLS": stub.base_url}


def _ready(tmp_path, workers: int) -> None:
    """Wait for the workers started so far to consume (their logs say "ready.")."""
    logs = [tmp_path / f"worker{n}.log" for n in range(workers)]
    wait_until(lambda: all(log.exists() and b"ready." in log.read_bytes() for log in logs), 60,
               "the workers to start")


def _finished_without_loss(job_id):
    finished = _job(job_id)
    assert (finished.status, finished.done, finished.failed) == (
        GenerationJob.DONE, finished.total, 0)
    assert Candidate.objects.filter(job=finished).count() == finished.total and _no_duplicates()
    assert set(Candidate.objects.filter(job=finished).values_list("record_id", flat=True)) == set(
        finished.record_ids)
    return finished


@pytest.mark.worker
def test_two_workers_share_one_job(project, demo_data, worker_factory, counting_stub, tmp_path):
    job, _ = _two_workers_on_a_job(project, demo_data, worker_factory, counting_stub, 40, tmp_path)
    wait_until(lambda: _job(job.pk).status == GenerationJob.DONE, 120, "the job to finish")
    _finished_without_loss(job.pk)
    assert job.chunks.values("runner").distinct().count() == 2
    assert counting_stub.peak <= 4, counting_stub.peak


def _two_workers_on_a_job(project, demo_data, worker_factory, stub, limit, tmp_path):
    """Two real workers, both running chunks of one job."""
    records_demo(project, demo_data, names=("vqa_rad.jsonl",))
    workers = [worker_factory(**_env(stub)) for _ in range(2)]
    _ready(tmp_path, 2)
    job = _openai_job(project, stub, limit=limit)
    wait_until(lambda: job.chunks.filter(status=GenerationChunk.RUNNING)
               .values("runner").distinct().count() == 2, 60, "both workers on the job")
    return job, workers


@pytest.mark.worker
def test_a_killed_workers_chunk_is_taken_over(
    project, demo_data, worker_factory, counting_stub, tmp_path
):
    # given both workers on the job, when one is killed without warning
    job, (doomed, _) = _two_workers_on_a_job(project, demo_data, worker_factory, counting_stub,
                                             40, tmp_path)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    assert _job(job.pk).status == GenerationJob.RUNNING
    # then the other takes its chunk over once its heartbeat is stale, and finishes the job
    wait_until(lambda: _job(job.pk).status == GenerationJob.DONE, 120, "the job to finish")
    _finished_without_loss(job.pk)


@pytest.mark.worker
def test_cancel_stops_every_chunk(project, demo_data, worker_factory, counting_stub, tmp_path):
    job, _ = _two_workers_on_a_job(project, demo_data, worker_factory, counting_stub, 60, tmp_path)
    # when the job is cancelled
    assert services.job_cancel(job=job)
    # then both workers stop: every request sent is saved, and none is sent after that
    wait_until(lambda: not job.chunks.filter(status=GenerationChunk.RUNNING).exists(), 30,
               "the workers to let go")
    sent = len(counting_stub.requests)
    time.sleep(1.5)
    stopped = _job(job.pk)
    assert len(counting_stub.requests) == sent == stopped.done + stopped.failed < stopped.total
    assert stopped.status == GenerationJob.CANCELLED and stopped.heartbeat_at is None
    assert 1 <= stopped.in_flight_at_stop <= 4 and stopped.in_flight == 0
    # and resuming finishes exactly the rest
    assert services.job_resume(job=stopped)
    wait_until(lambda: _job(job.pk).status == GenerationJob.DONE, 120, "the resumed job")
    _finished_without_loss(job.pk)
