"""The optional LLM judge against llama-cpp-python's own OpenAI-compatible server (SmolLM2)."""

import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from medmax_review.generation.backends.local import local_model_path, local_model_problem
from medmax_review.review.models import Candidate
from medmax_review.scoring.scorers.llm_judge import parse_verdict
from medmax_review.scoring.services import candidates_score
from tests.conftest import process_stop, require_service

PORT = 8141


@pytest.fixture(scope="module")
def llama_server():
    problem = local_model_problem()
    if problem:
        require_service(f"the local model ({problem})")
    path = local_model_path()
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", PORT)) == 0:
            pytest.fail(f"port {PORT} is already in use")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", path, "--host", "127.0.0.1",
         "--port", str(PORT), "--n_ctx", "2048", "--n_threads", "1", "--model_alias", "smollm2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{PORT}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/models", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("llama-cpp server did not start")
                time.sleep(0.5)
        yield base
    finally:
        process_stop(proc)


def test_llm_judge_parse_verdict_variants():
    assert parse_verdict('Sure: {"correct": false, "reason": "wrong side"}') == (False, "wrong side")
    assert parse_verdict('{"correct": true, "reason": "ok"}') == (True, "ok")
    assert parse_verdict("The answer is correct.")[0] is True
    assert parse_verdict("I do not know")[0] is None


@pytest.mark.llm
@pytest.mark.django_db
def test_llm_judge_verdict_and_reason_stored(settings, llama_server, demo_rows, make_record,
                                             make_candidate):
    settings.OPENAI_BASE_URL = llama_server
    settings.OPENAI_MODEL = "smollm2"
    settings.OPENAI_API_KEY = ""
    record = make_record(demo_rows["vqarad-1582"])
    candidate = make_candidate(record, response="The left lung has diffuse opacification.")

    candidates_score(candidate_ids=[candidate.id], llm_judge=True)

    scores = Candidate.objects.get(pk=candidate.pk).scores
    judged = scores["llm_judge"]
    assert judged["value"] in (0.0, 0.5, 1.0)
    assert judged["band"] in ("good", "fair", "fail")
    (ev,) = judged["evidence"]
    # Whatever the tiny model says, its reason (or raw reply) is kept as evidence.
    assert ev["rule"] == "verdict" and len(ev["text"]) > len("judged correct by smollm2: ")
    assert judged["text_sha1"]

    # The same text is not sent to the judge again: the verdict stays as it was.
    candidates_score(candidate_ids=[candidate.id], llm_judge=True)
    assert Candidate.objects.get(pk=candidate.pk).scores["llm_judge"] == judged


@pytest.mark.django_db
def test_llm_judge_skipped_without_backend(settings, demo_rows, make_record, make_candidate):
    settings.OPENAI_BASE_URL = ""
    record = make_record(demo_rows["vqarad-1582"])
    candidate = make_candidate(record, response="Right")
    candidates_score(candidate_ids=[candidate.id], llm_judge=True)
    assert "llm_judge" not in Candidate.objects.get(pk=candidate.pk).scores


@pytest.mark.django_db
def test_llm_judge_unreachable_backend_keeps_other_scores(settings, demo_rows, make_record,
                                                          make_candidate):
    # Given a configured backend that nothing listens on (one of this suite's ports)
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{PORT + 1}/v1"
    settings.OPENAI_MODEL = "smollm2"
    settings.LLM_MAX_RETRIES = 0
    settings.LLM_TIMEOUT_SECONDS = 2.0
    record = make_record(demo_rows["vqarad-1582"])
    candidate = make_candidate(record, response="Left")

    candidates_score(candidate_ids=[candidate.id], llm_judge=True)

    scores = Candidate.objects.get(pk=candidate.pk).scores
    assert "llm_judge" not in scores and scores["consistency"]["band"] == "fail"


@pytest.mark.django_db
def test_llm_judge_client_built_only_when_asked_and_once_per_run(settings, monkeypatch, demo_rows,
                                                                  make_record, make_candidate):
    # Given a configured backend and a stand-in for building its client
    from medmax_review.scoring import services

    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{PORT + 1}/v1"
    settings.OPENAI_MODEL = "smollm2"
    built = []
    monkeypatch.setattr(services, "_judge_client", lambda: built.append(1))
    record = make_record(demo_rows["vqarad-1582"])
    ids = [make_candidate(record, response=r, sample_index=i).id
           for i, r in enumerate(("Right", "Left"))]

    # When scoring without the judge, then no client is built
    candidates_score(candidate_ids=ids)
    assert built == []

    # When the judge is asked for two candidates, then one client serves the whole run
    candidates_score(candidate_ids=ids, llm_judge=True)
    assert built == [1]
