"""The score_candidates task through a real broker and a real Celery worker."""

import time

import pytest
from django.core.management import call_command

from medmax_review.review.models import Candidate
from tests.conftest import process_stop


@pytest.mark.worker
def test_score_task_runs_on_real_worker_and_twice_is_harmless(project, demo_rows, make_record,
                                                              make_candidate, worker_factory):
    record = make_record(demo_rows["vqarad-1582"])
    faithful = make_candidate(record, response="Right")
    swapped = make_candidate(record, response="Left", sample_index=1)

    # Enqueue the same work twice, as a redelivery would.
    call_command("score", project=project.slug)
    call_command("score", project=project.slug)

    worker = worker_factory()
    try:
        deadline = time.monotonic() + 60
        while Candidate.objects.filter(pk__in=[faithful.pk, swapped.pk], scores={}).exists():
            assert worker.poll() is None, "the worker exited"
            assert time.monotonic() < deadline, "the worker did not score the candidates in 60 s"
            time.sleep(0.3)
        time.sleep(1.0)  # let the second (duplicate) task finish too
    finally:
        process_stop(worker)

    faithful, swapped = (Candidate.objects.get(pk=c.pk) for c in (faithful, swapped))
    assert faithful.scores["consistency"]["band"] == "good"
    assert swapped.scores["consistency"]["band"] == "fail"
    assert set(swapped.slots.values_list("priority", flat=True)) == {swapped.priority}
