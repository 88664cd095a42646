"""What an LLM server says back is untrusted: no credential it echoes is kept, and an allowed
host name must not lead to a private address."""

import pytest

from medmax_review.core import medmax
from medmax_review.generation import services
from medmax_review.generation.backends.addresses import resolve
from medmax_review.generation.backends.openai_compat import base_url_problem
from medmax_review.generation.backends.server_text import server_text
from medmax_review.generation.models import GenerationJob
from medmax_review.review.models import GENERATION_ERROR, Candidate


@pytest.mark.parametrize("echoed", [
    'invalid request; headers: {"Authorization": "Bearer sk-live-abcdef1234567890"}',
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
    "bad key api_key=abcd1234efgh5678 for model",
    "token hf_abcdefghijklmnopqrstuvwxyz012345 rejected",
])
def test_server_text_strips_credentials(echoed, settings):
    settings.OPENAI_API_KEY = "the-real-worker-key-123"
    text = server_text(echoed + " and the-real-worker-key-123\n" + "x" * 1000)
    for secret in ("sk-live", "eyJhbGci", "abcd1234efgh5678", "hf_abcdef", "the-real-worker-key"):
        assert secret not in text
    assert "\n" not in text and len(text) <= 300


def test_error_body_echoing_the_authorization_header_is_not_stored(
    project, demo_records, stub_server, settings
):
    settings.OPENAI_API_KEY = "sk-worker-secret-000111222"
    stub_server.default = lambda body: (400, {"error": {
        "message": "bad request; you sent Authorization: Bearer sk-worker-secret-000111222 "
                   "<script>alert(1)</script>" + " padding" * 200}})
    job = services.job_create(project=project, task=medmax.VQA, backend="openai", model="stub",
                              base_url=stub_server.base_url, filters={"limit": 2})

    services.job_run(job_id=job.pk)

    errors = list(Candidate.objects.filter(job=job, status=GENERATION_ERROR)
                  .values_list("generation_error", flat=True))
    assert len(errors) == 2
    for error in errors:
        assert "sk-worker-secret" not in error and len(error) < 400
    assert "sk-worker-secret" not in (GenerationJob.objects.get(pk=job.pk).error or "")


def test_allowed_name_resolving_to_a_private_address_is_refused(settings):
    settings.LLM_ALLOWED_BASE_URLS = ["http://localhost:8999/v1"]
    problem = base_url_problem("http://localhost:8999/v1")
    assert "resolves to 127.0.0.1" in problem and "LLM_ALLOWED_PRIVATE_HOSTS" in problem

    settings.LLM_ALLOWED_PRIVATE_HOSTS = ["localhost"]
    assert base_url_problem("http://localhost:8999/v1") == ""


def test_an_address_listed_outright_is_allowed_and_a_name_is_pinned(settings):
    settings.LLM_ALLOWED_BASE_URLS = ["http://127.0.0.1:8999/v1"]
    assert base_url_problem("http://127.0.0.1:8999/v1") == ""
    settings.LLM_ALLOWED_PRIVATE_HOSTS = ["localhost"]
    pinned = resolve("http://localhost:8999/v1")
    assert pinned.url in ("http://127.0.0.1:8999/v1", "http://[::1]:8999/v1")
    assert pinned.host_header == "localhost:8999"


def test_job_through_an_allowed_private_name_reaches_the_server(project, demo_records, stub_server, settings):
    url = stub_server.base_url.replace("127.0.0.1", "localhost")
    settings.LLM_ALLOWED_BASE_URLS = [url]
    settings.LLM_ALLOWED_PRIVATE_HOSTS = ["localhost"]
    job = services.job_create(project=project, task=medmax.VQA, backend="openai", model="stub",
                              base_url=url, filters={"limit": 1})

    services.job_run(job_id=job.pk)

    assert GenerationJob.objects.get(pk=job.pk).done == 1
