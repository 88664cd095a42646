"""The job page as an admin watches it: progress item by item, a time-left estimate that only
counts down, a cancel that starts nothing more and says what was in flight, the failed items
as they fail, and the model named whatever the backend."""

import time

from django.urls import reverse

from medmax_review.core import medmax
from medmax_review.generation import selectors, services
from medmax_review.generation.backends.local import MODEL as LOCAL_MODEL
from medmax_review.generation.models import GenerationJob
from tests.generation.conftest import records_demo, require_local_model
from tests.generation.test_jobs import _openai_job, _run_in_thread


def _watch(job_id, until, every=0.05, timeout=30):
    """(done + failed, seconds left) as the page would read them, until `until(job)`."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = GenerationJob.objects.get(pk=job_id)
        progress = selectors.job_progress(job=job)
        seen.append((progress.done + progress.failed, progress.seconds_left))
        if until(job):
            return seen
        time.sleep(every)
    raise AssertionError(f"the job did not get there: {seen[-3:]}")


def test_progress_moves_item_by_item_and_time_left_only_counts_down(
    transactional_db, project, demo_data, stub_server, settings
):
    records_demo(project, demo_data, names=("vqa_rad.jsonl",))
    settings.LLM_CONCURRENCY = 2
    stub_server.latency = 0.4
    job = _openai_job(project, stub_server, filters={"limit": 10})
    runner = _run_in_thread(job.pk)
    try:
        seen = _watch(job.pk, until=lambda j: j.status == GenerationJob.DONE)
    finally:
        runner.join(timeout=30)

    counts = [n for n, _ in seen]
    # Saved as results arrive: the page sees most of the counts on the way, not batch jumps.
    assert len(set(counts)) >= 6, counts
    assert all(b - a <= 2 for a, b in zip(counts, counts[1:], strict=False)), counts
    estimates = [s for n, s in seen if s is not None and n < 10]
    assert len(estimates) >= 3, seen
    assert all(b <= a for a, b in zip(estimates, estimates[1:], strict=False)), estimates


def test_cancel_sends_no_new_request_and_says_how_many_were_in_flight(
    transactional_db, client, project, admin_user, demo_data, stub_server, settings
):
    records_demo(project, demo_data, names=("vqa_rad.jsonl",))
    settings.LLM_CONCURRENCY = 3
    stub_server.latency = 1.5
    job = _openai_job(project, stub_server, filters={"limit": 12})
    runner = _run_in_thread(job.pk)
    try:
        deadline = time.monotonic() + 10
        while len(stub_server.requests) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert services.job_cancel(job=job)
    finally:
        runner.join(timeout=30)

    job.refresh_from_db()
    assert len(stub_server.requests) == 3  # nothing was sent after the cancel
    assert job.in_flight_at_stop == 3 and job.done + job.failed == 3
    client.force_login(admin_user)
    html = client.get(reverse("generation_job", args=[project.slug, job.pk])).content.decode()
    assert "no new requests were sent; 3 requests were in flight, saved as they ended" in html


def test_failed_items_are_in_the_polled_fragment_with_their_count(
    client, project, admin_user, demo_records, stub_server
):
    stub_server.default = lambda body: (200, {
        "id": "x", "object": "chat.completion", "created": 0, "model": "stub",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "not json <b>at all</b>"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}})
    job = _openai_job(project, stub_server, filters={"limit": 2})
    services.job_run(job_id=job.pk)
    client.force_login(admin_user)

    fragment = client.get(reverse("generation_job", args=[project.slug, job.pk]),
                          HTTP_HX_REQUEST="true").content.decode()

    assert "<html" not in fragment
    assert "Failed items <span class=\"muted\">(2)</span>" in fragment
    assert "not json &lt;b&gt;at all&lt;/b&gt;" in fragment


def test_the_local_backend_names_its_model(project, demo_records):
    require_local_model()

    job = services.job_create(project=project, task=medmax.VQA, backend="local",
                              filters={"limit": 1})

    assert job.model == LOCAL_MODEL
