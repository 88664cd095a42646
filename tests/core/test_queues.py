"""Celery queues: each kind of work has its own queue, and a worker started without -Q (run_all,
the test workers, deploy/'s all-queue unit) consumes every one of them."""

import time

import pytest
import redis
from django.conf import settings

from medmax_review.celery import app
from medmax_review.review.candidates import CandidateSpec, candidates_create
from medmax_review.review.models import Candidate
from medmax_review.scoring.tasks import score_candidates
from medmax_review.sources.models import SourceRecord

EXPECTED = {
    "medmax_review.sources.tasks.import_run_execute": "import",
    "medmax_review.generation.tasks.run_job": "generation",
    "medmax_review.evaluation.tasks.run_evaluation": "generation",
    "medmax_review.scoring.tasks.score_candidates": "scoring",
    "medmax_review.exports.tasks.build_dataset_version": "export",
    # Beat's periodic tasks.
    "medmax_review.sources.tasks.uploads_sweep": "default",
    "medmax_review.sources.tasks.import_runs_resend": "default",
    "medmax_review.generation.tasks.jobs_resend": "default",
    "medmax_review.exports.tasks.versions_resend": "default",
    "medmax_review.scoring.tasks.unscored_resend": "default",
    "medmax_review.scoring.tasks.reject_models_refit": "default",
    # A project's stored figures, refreshed while someone views them.
    "medmax_review.projects.tasks.figures_refresh": "default",
}


def _our_tasks() -> list[str]:
    app.loader.import_default_modules()
    return sorted(name for name in app.tasks if name.startswith("medmax_review."))


def _queue_of(task: str) -> str:
    return app.amqp.router.route({}, task)["queue"].name


def test_routes_send_each_task_to_its_queue():
    # given every task the app registers
    tasks = _our_tasks()

    # then each is listed here (a new task must choose its queue) and routed as listed
    assert tasks == sorted(EXPECTED)
    assert {task: _queue_of(task) for task in tasks} == EXPECTED


def test_worker_without_queue_option_consumes_every_routed_queue():
    # A worker's default -Q is every queue of CELERY_TASK_QUEUES: nothing routed can be stuck.
    assert set(app.amqp.queues) == set(EXPECTED.values())
    assert set(settings.CELERY_TASK_QUEUES) == set(EXPECTED.values())


def test_beat_schedule_tasks_go_to_the_default_queue():
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert _queue_of(entry["task"]) == "default", entry["task"]


@pytest.mark.worker
def test_scoring_task_waits_on_its_queue_and_a_default_worker_runs_it(project, worker_factory):
    # given a candidate without scores, and its scoring task on the broker
    record = SourceRecord.objects.create(
        project=project, source="vqarad", external_id="1", license="CC0-1.0",
        question="Is the heart enlarged?", answer="No",
    )
    (candidate,) = candidates_create(project=project, specs=[CandidateSpec(
        record_id=record.id, task="vqa", instruction=record.question, response="No",
        image_position="none", sample_index=0, template_ref="test",
    )])
    worker = worker_factory(queues="default")  # flushes the broker; takes only "default"
    score_candidates.delay([candidate.pk])
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    # then the message waits in the scoring queue, untouched by a default-only worker
    assert broker.llen("scoring") == 1
    time.sleep(3)
    assert Candidate.objects.get(pk=candidate.pk).scores == {}
    assert worker.poll() is None

    # when a worker started without -Q joins
    everything = worker_factory()

    # then it runs the task
    deadline = time.monotonic() + 60
    while Candidate.objects.get(pk=candidate.pk).scores == {}:
        assert everything.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, "the scoring task did not run in 60 s"
        time.sleep(0.3)
    assert broker.llen("scoring") == 0
