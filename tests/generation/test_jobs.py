"""Job services against the real database and a real local HTTP server."""

import base64
import json
import re
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Count
from django.utils import timezone

from medmax_review.core import medmax
from medmax_review.generation import chunks, services
from medmax_review.generation.models import GenerationChunk, GenerationJob
from medmax_review.review.models import GENERATION_ERROR, PENDING, Candidate
from tests.generation.conftest import pair_reply


def _openai_job(project, stub, **kwargs):
    kwargs.setdefault("filters", {"limit": 6})
    return services.job_create(
        project=project, task=medmax.VQA, backend="openai", model="stub", base_url=stub.base_url,
        **kwargs,
    )


def _no_duplicates():
    return not Candidate.objects.values("record", "task", "template_ref", "sample_index").annotate(
        n=Count("id")).filter(n__gt=1).exists()


def test_job_create_refuses_base_url_not_allowed(project, demo_records, settings):
    settings.LLM_ALLOWED_BASE_URLS = []
    with pytest.raises(services.JobError, match="^base_url: .*LLM_ALLOWED_BASE_URLS"):
        services.job_create(project=project, task=medmax.VQA, backend="openai", model="m",
                            base_url="http://10.0.0.5:8000/v1")
    assert not GenerationJob.objects.exists()


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"task": "poetry"}, "task"),
    ({"backend": "gpt-9"}, "backend"),
    ({"samples": 0}, "samples"),
    ({"parameters": {"temperature": 5}}, "temperature"),
    ({"parameters": {"max_tokens": "lots"}}, "max_tokens"),
    ({"filters": {"colour": "red"}}, "filters"),
])
def test_job_create_names_bad_field(project, demo_records, kwargs, field):
    arguments = {"project": project, "task": medmax.VQA, "backend": "template", **kwargs}
    with pytest.raises(services.JobError, match=f"^{field}"):
        services.job_create(**arguments)


def test_job_run_openai_records_tokens_cost_provenance(project, demo_records, stub_server):
    job = _openai_job(project, stub_server, samples=2, parameters={
        "price_per_1k_prompt": "0.5", "price_per_1k_completion": "1.5", "temperature": 0.2,
    })
    assert job.total == 12 and job.template.ref == "vqa/default@v1"
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == (GenerationJob.DONE, 12, 0)
    assert (job.prompt_tokens, job.completion_tokens) == (1200, 240)
    assert job.cost_usd == Decimal("12") * (Decimal("0.05") + Decimal("0.03"))
    candidate = Candidate.objects.filter(job=job).order_by("id").first()
    assert candidate.status == PENDING
    assert candidate.instruction == candidate.record.question
    assert candidate.provenance["backend"] == "openai" and candidate.provenance["model"] == "stub"
    assert candidate.provenance["template_ref"] == "vqa/default@v1"
    assert candidate.provenance["parameters"]["temperature"] == 0.2
    assert Decimal(candidate.provenance["cost_usd"]) == Decimal("0.08")
    # the prompt was grounded in the record and the samples asked for different seeds
    prompts = [r["messages"][-1]["content"] for r in stub_server.requests]
    assert any(candidate.record.question in p for p in prompts)
    assert {r["seed"] for r in stub_server.requests} == {0, 1}


def test_job_run_keeps_malformed_output_as_generation_error(project, demo_records, stub_server):
    stub_server.script = [
        (200, lambda body: pair_reply(body, content="Sure! Here is JSON: {"), 0),
        (200, lambda body: pair_reply(body, content='{"instruction": "Q', finish_reason="length"), 0),
        (200, lambda body: pair_reply(body, content=json.dumps({"instruction": "Q?"})), 0),
    ]
    job = _openai_job(project, stub_server, filters={"limit": 5})
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.done, job.failed) == (2, 3)
    errors = Candidate.objects.filter(job=job, status=GENERATION_ERROR).order_by("id")
    assert sorted(c.generation_error.split(":")[0] for c in errors) == [
        "JSON lacks the key(s)", "not valid JSON", "output truncated (finish_reason=length)",
    ]
    kept = {c.raw_output for c in errors}
    assert "Sure! Here is JSON: {" in kept
    # never half-parsed: failed candidates carry no text
    assert all(c.instruction == c.response == "" for c in errors)
    # retry-failed discards them and generates those items again
    assert services.job_retry_failed(job=job) == 3
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == (GenerationJob.DONE, 5, 0)
    assert Candidate.objects.filter(job=job).count() == 5


def test_job_run_twice_creates_no_duplicates(project, demo_records):
    job = services.job_create(project=project, task=medmax.VQA, backend="template",
                              filters={"limit": 10}, samples=2)
    services.job_run(job_id=job.pk)
    assert services.job_run(job_id=job.pk) == services.NOTHING_TO_DO
    # a redelivered task after a crash: the job looks pending again
    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.PENDING)
    assert services.job_run(job_id=job.pk) == services.RAN
    job.refresh_from_db()
    assert (job.status, job.done, job.total) == (GenerationJob.DONE, 20, 20)
    assert Candidate.objects.filter(job=job).count() == 20
    assert _no_duplicates()
    # a second job for the same task and template picks only records not generated yet
    again = services.job_create(project=project, task=medmax.VQA, backend="template",
                                filters={"limit": 10})
    assert again.total == 10 and not set(again.record_ids) & set(job.record_ids)


def test_job_chunk_claim_only_one_wins(project, demo_records):
    job = services.job_create(project=project, task=medmax.VQA, backend="template",
                              filters={"limit": 10})
    (chunk,) = job.chunks.all()
    assert chunks.chunk_claim(job_id=job.pk, runner="a") == chunk
    assert chunks.chunk_claim(job_id=job.pk, runner="b") is None
    assert services.job_run(job_id=job.pk) == services.BUSY
    # a running chunk whose worker went silent may be taken over
    stale = timezone.now() - timedelta(seconds=3600)
    GenerationChunk.objects.filter(pk=chunk.pk).update(heartbeat_at=stale)
    assert chunks.chunk_claim(job_id=job.pk, runner="b") == chunk


def test_job_token_cap_stops_job(project, demo_records, stub_server, settings):
    settings.GENERATION_BATCH_SIZE = 2
    job = _openai_job(project, stub_server, token_cap=300)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    # Each item costs 120 tokens. Results are counted as they finish, so the cap is seen once
    # a finished result crosses it; requests still in flight then may add theirs, none starts.
    assert job.status == GenerationJob.FAILED
    used = re.match(r"token cap reached: (\d+) tokens used, cap 300", job.error)
    assert used is not None, job.error
    assert int(used.group(1)) == 120 * job.done > 300
    assert job.done < job.total
    # raising the cap and resuming finishes the rest
    assert services.job_resume(job=job, token_cap=10_000)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done) == (GenerationJob.DONE, 6)


def test_job_cost_cap_stops_job(project, demo_records, stub_server, settings):
    settings.GENERATION_BATCH_SIZE = 2
    job = _openai_job(project, stub_server, cost_cap_usd="0.1",
                      parameters={"price_per_1k_prompt": "1", "price_per_1k_completion": "0"})
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == GenerationJob.FAILED and job.error.startswith("cost cap reached")
    assert job.done == 2


def test_job_stops_when_server_unavailable_and_resumes(project, demo_records, stub_server, settings):
    settings.LLM_MAX_RETRIES = 1
    stub_server.default = lambda body: (503, {"error": {"message": "overloaded"}})
    job = _openai_job(project, stub_server)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == GenerationJob.FAILED and "resume when the server is back" in job.error
    assert not Candidate.objects.filter(job=job).exists()
    stub_server.default = lambda body: (200, pair_reply(body))
    assert services.job_resume(job=job)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == (GenerationJob.DONE, 6, 0)


def test_job_cancel_stops_before_next_batch(project, demo_records):
    job = services.job_create(project=project, task=medmax.VQA, backend="template")
    assert services.job_cancel(job=job)
    assert services.job_run(job_id=job.pk) == services.NOTHING_TO_DO
    assert not Candidate.objects.filter(job=job).exists()
    assert services.job_resume(job=job)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == GenerationJob.DONE and job.done == job.total


def test_job_keeps_requests_in_flight_concurrently(project, demo_records, stub_server, settings):
    settings.LLM_CONCURRENCY = 8
    stub_server.latency = 0.3
    job = _openai_job(project, stub_server, filters={"limit": 16})
    started = time.monotonic()
    services.job_run(job_id=job.pk)
    elapsed = time.monotonic() - started
    job.refresh_from_db()
    assert job.done == 16
    # one at a time this would take 16 x 0.3 = 4.8 s
    assert elapsed < 2.4, elapsed


def test_templates_ensure_defaults_is_idempotent(db):
    first = services.templates_ensure_defaults()
    again = services.templates_ensure_defaults()
    assert [t.pk for t in first] == [t.pk for t in again]
    assert {t.task for t in first} == set(medmax.TASKS)


def test_job_run_vision_sends_the_record_image(project, demo_records, stub_server, settings):
    job = _openai_job(project, stub_server, filters={"limit": 1}, parameters={"vision": True})
    services.job_run(job_id=job.pk)
    record = demo_records.get(pk=job.record_ids[0])
    content = stub_server.requests[0]["messages"][-1]["content"]
    url = content[0]["image_url"]["url"]
    assert url.startswith(f"data:image/{record.image.format.lower()};base64,")
    sent = base64.b64decode(url.split(",", 1)[1])
    assert sent == (settings.MEDIA_ROOT / record.image.file).read_bytes()


def test_job_run_enqueues_scoring_after_commit(project, demo_records, django_capture_on_commit_callbacks):
    job = services.job_create(project=project, task=medmax.VQA, backend="template",
                              filters={"limit": 3})
    with django_capture_on_commit_callbacks() as callbacks:
        services.job_run(job_id=job.pk)
    # results are saved as they arrive and sent to the scoring queue in batches, each once
    # its commit is done: every candidate exactly once
    sent = [pk for callback in callbacks for pk in callback.args[0]]
    assert 1 <= len(callbacks) <= 3
    assert sorted(sent) == sorted(Candidate.objects.filter(job=job).values_list("pk", flat=True))
    assert len(sent) == 3


def _run_in_thread(job_id: int):
    """job_run in a thread of its own, as a worker would run it beside the test's checks."""
    import threading

    from django.db import connection

    def run():
        try:
            services.job_run(job_id=job_id)
        finally:
            connection.close()

    runner = threading.Thread(target=run)
    runner.start()
    return runner


def test_job_heartbeat_keeps_slow_job_from_takeover(transactional_db, project, demo_data, stub_server, settings):
    from tests.generation.conftest import records_demo

    records_demo(project, demo_data, names=("vqa_rad.jsonl",))
    settings.GENERATION_STALE_SECONDS = 1
    stub_server.latency = 2.5  # one batch takes far longer than the stale limit
    job = _openai_job(project, stub_server, filters={"limit": 2})
    runner = _run_in_thread(job.pk)
    try:
        time.sleep(1.8)
        # the worker is alive and mid-batch: nobody else may take the job
        assert chunks.chunk_claim(job_id=job.pk, runner="another worker") is None
    finally:
        runner.join(timeout=30)
    job.refresh_from_db()
    assert (job.status, job.done) == (GenerationJob.DONE, 2)


def test_job_cancel_stops_after_item_in_flight_not_whole_batch(
    transactional_db, project, demo_data, stub_server, settings
):
    from medmax_review.generation import selectors
    from tests.generation.conftest import records_demo

    records_demo(project, demo_data, names=("vqa_rad.jsonl",))
    # one request at a time (so four to a batch), each slower than the heartbeat interval
    settings.LLM_CONCURRENCY = 1
    settings.GENERATION_STALE_SECONDS = 3
    stub_server.latency = 1.2
    job = _openai_job(project, stub_server, filters={"limit": 8})
    runner = _run_in_thread(job.pk)
    try:
        # given the first request of the batch in flight, when the job is cancelled
        deadline = time.monotonic() + 10
        while not stub_server.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert services.job_cancel(job=job)
        job.refresh_from_db()
        assert selectors.job_is_stopping(job=job, stale_seconds=3)
    finally:
        runner.join(timeout=30)
    # then the items not started are dropped; what was in flight is kept and counted
    job.refresh_from_db()
    saved = Candidate.objects.filter(job=job).count()
    assert job.status == GenerationJob.CANCELLED
    assert 1 <= saved <= 3 and len(stub_server.requests) == saved
    assert job.done + job.failed == saved
    # and the worker has let go: the job no longer shows as stopping
    assert job.heartbeat_at is None
    assert not selectors.job_is_stopping(job=job, stale_seconds=3)
    # resuming generates exactly the rest
    assert services.job_resume(job=job)
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done + job.failed) == (GenerationJob.DONE, 8)
    assert Candidate.objects.filter(job=job).count() == 8 and _no_duplicates()
