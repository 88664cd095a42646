"""Real models: SmolLM2-135M in-process, and served by llama-cpp-python's OpenAI-compatible server."""

import json

import pytest

from medmax_review.core import medmax
from medmax_review.generation import services
from medmax_review.generation.backends import GenerationRequest
from medmax_review.generation.backends.local import LocalBackend, _model
from medmax_review.generation.models import GenerationJob
from medmax_review.generation.prompts import (
    DEFAULT_TEMPLATES,
    OUTPUT_SCHEMA,
    SYSTEM_PROMPT,
    template_render,
)
from medmax_review.review.models import Candidate
from tests.generation.conftest import require_local_model

pytestmark = pytest.mark.llm


def _check_outputs(job):
    job.refresh_from_db()
    assert job.status == GenerationJob.DONE, job.error
    assert job.done + job.failed == job.total == 2
    assert job.prompt_tokens > 0 and job.completion_tokens > 0
    for candidate in Candidate.objects.filter(job=job):
        assert candidate.raw_output
        assert candidate.provenance["template_ref"] == "vqa/default@v1"
        if candidate.provenance["finish_reason"] == "stop":
            # the JSON grammar makes a finished answer parse; keys may still be missing
            assert isinstance(json.loads(candidate.raw_output), dict)
        if not candidate.generation_error:
            assert candidate.instruction and candidate.response


def test_local_backend_answers_valid_json():
    path = require_local_model()
    backend = LocalBackend(path)
    prompt = template_render(DEFAULT_TEMPLATES[medmax.VQA], {"question": "Is this a CT scan?", "answer": "Yes"})
    result = backend.generate(GenerationRequest(
        messages=[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
        task=medmax.VQA, temperature=0.1, max_tokens=96, json_schema=OUTPUT_SCHEMA,
    ))
    assert result.finish_reason == "stop"
    data = json.loads(result.text)
    assert set(data) >= {"instruction", "response"}
    assert result.prompt_tokens > 50 and result.completion_tokens > 0
    # loaded once per process
    assert _model(path) is _model(path)


def test_job_run_local_backend(project, demo_records):
    require_local_model()
    job = services.job_create(project=project, task=medmax.VQA, backend="local",
                              filters={"limit": 2}, parameters={"max_tokens": 96, "temperature": 0.1})
    services.job_run(job_id=job.pk)
    _check_outputs(job)
    assert job.cost_usd == 0


def test_job_run_openai_backend_on_llama_cpp_server(project, demo_records, llama_server, settings):
    settings.LLM_ALLOWED_BASE_URLS = [llama_server]
    job = services.job_create(
        project=project, task=medmax.VQA, backend="openai", model="smollm2", base_url=llama_server,
        filters={"limit": 2}, parameters={"max_tokens": 96, "temperature": 0.1},
    )
    services.job_run(job_id=job.pk)
    _check_outputs(job)
