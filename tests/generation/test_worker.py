"""A real Celery worker on Redis runs jobs; one killed mid-job and restarted loses nothing."""

import signal

import pytest
from django.db.models import Count

from medmax_review.core import medmax
from medmax_review.generation import services
from medmax_review.generation.models import GenerationJob
from medmax_review.review.models import Candidate
from tests.generation.conftest import StubServer, records_demo, wait_until

pytestmark = pytest.mark.worker


def _job(pk):
    return GenerationJob.objects.get(pk=pk)


def test_worker_runs_job_end_to_end(project, demo_data, worker_factory):
    records_demo(project, demo_data, names=("vqa_rad.jsonl",))
    worker_factory()
    job = services.job_create(project=project, task=medmax.VQA, backend="template",
                              filters={"limit": 20})
    wait_until(lambda: _job(job.pk).status == GenerationJob.DONE, 90, "the job to finish")
    finished = _job(job.pk)
    assert (finished.done, finished.failed, finished.total) == (20, 0, 20)
    assert Candidate.objects.filter(job=job).count() == 20


def test_worker_killed_mid_job_then_restarted_finishes_without_duplicates(
    project, demo_data, worker_factory, settings
):
    records_demo(project, demo_data, names=("vqa_rad.jsonl",))
    stub = StubServer(latency=0.25)
    settings.LLM_ALLOWED_BASE_URLS = [stub.base_url]
    # Short timeouts so the unacknowledged task comes back within the test.
    env = {"LLM_ALLOWED_BASE_URLS": stub.base_url, "GENERATION_BATCH_SIZE": "4",
           "LLM_CONCURRENCY": "2", "CELERY_VISIBILITY_TIMEOUT": "3",
           "GENERATION_STALE_SECONDS": "3"}
    try:
        first = worker_factory(**env)
        job = services.job_create(project=project, task=medmax.VQA, backend="openai",
                                  model="stub", base_url=stub.base_url, filters={"limit": 40})
        # given a worker that has saved a few batches but not all
        wait_until(lambda: _job(job.pk).done >= 8, 90, "a few batches to be saved")
        # when it is killed without warning
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed = _job(job.pk)
        assert killed.status == GenerationJob.RUNNING and 8 <= killed.done < killed.total
        # then a new worker takes the unacknowledged task over once the heartbeat is stale
        worker_factory(**env)
        wait_until(lambda: _job(job.pk).status == GenerationJob.DONE, 120, "the restarted job to finish")
    finally:
        stub.close()
    finished = _job(job.pk)
    assert (finished.done, finished.failed, finished.total) == (40, 0, 40)
    assert Candidate.objects.filter(job=job).count() == 40
    duplicates = (
        Candidate.objects.values("record", "task", "template_ref", "sample_index")
        .annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not duplicates.exists()
    # every record of the job has its candidate: nothing lost
    assert set(Candidate.objects.filter(job=job).values_list("record_id", flat=True)) == set(
        finished.record_ids
    )
