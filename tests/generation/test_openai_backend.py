"""The OpenAI-compatible backend against a real local HTTP server that misbehaves on purpose."""

import time

import pytest

from medmax_review.generation.backends import (
    BackendError,
    BackendUnavailable,
    GenerationRequest,
    backend_for,
)
from medmax_review.generation.backends.openai_compat import OpenAICompatBackend

REQUEST = GenerationRequest(
    messages=[{"role": "user", "content": "Question: Is it?\nAnswer: Yes"}], task="vqa",
    max_tokens=64,
)
ERROR = {"error": {"message": "try later", "type": "server_error"}}


def _backend(stub, **kwargs):
    return OpenAICompatBackend(base_url=stub.base_url, model="stub", backoff_base=0.01, **kwargs)


def test_openai_backend_retries_429_then_succeeds(stub_server):
    stub_server.script = [(429, ERROR, 0)]
    result = _backend(stub_server, max_retries=3).generate(REQUEST)
    assert len(stub_server.requests) == 2
    assert '"instruction": "Is it?"' in result.text
    assert (result.prompt_tokens, result.completion_tokens) == (100, 20)


def test_openai_backend_gives_up_on_500s_after_retries(stub_server):
    stub_server.default = lambda body: (500, ERROR)
    with pytest.raises(BackendUnavailable, match="failed 3 times"):
        _backend(stub_server, max_retries=2).generate(REQUEST)
    assert len(stub_server.requests) == 3


def test_openai_backend_does_not_retry_400(stub_server):
    stub_server.default = lambda body: (400, {"error": {"message": "context too long"}})
    with pytest.raises(BackendError, match="HTTP 400.*context too long"):
        _backend(stub_server, max_retries=3).generate(REQUEST)
    assert len(stub_server.requests) == 1


def test_openai_backend_times_out_slow_answers(stub_server):
    stub_server.latency = 2.0
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="Timeout"):
        _backend(stub_server, max_retries=1, timeout=0.3).generate(REQUEST)
    assert time.monotonic() - started < 1.8
    assert len(stub_server.requests) == 2


def test_openai_backend_malformed_http_body(stub_server):
    stub_server.default = lambda body: (200, b"{this is not json")
    with pytest.raises(BackendError, match="malformed"):
        _backend(stub_server, max_retries=3).generate(REQUEST)
    assert len(stub_server.requests) == 1


def test_openai_backend_backoff_is_exponential_and_capped(stub_server):
    backend = OpenAICompatBackend(base_url=stub_server.base_url, model="m", backoff_base=0.5,
                                  backoff_cap=3.0)
    assert [backend.backoff(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_openai_backend_sends_image_as_data_url(stub_server):
    request = GenerationRequest(messages=REQUEST.messages, image=b"\x89PNG fake", image_mime="image/png")
    _backend(stub_server, vision=True).generate(request)
    content = stub_server.requests[0]["messages"][-1]["content"]
    assert content[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert content[1] == {"type": "text", "text": REQUEST.messages[0]["content"]}


def test_openai_backend_key_comes_from_settings(stub_server, settings):
    settings.OPENAI_API_KEY = "sk-worker-only"
    backend = _backend(stub_server)
    assert backend.client.api_key == "sk-worker-only"


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data",
    "http://127.0.0.1:6379",
    "http://localhost:5432/v1",
    "file:///etc/passwd",
    "gopher://127.0.0.1/",
])
def test_backend_for_refuses_unlisted_base_url(settings, url):
    settings.LLM_ALLOWED_BASE_URLS = ["https://api.example.org/v1"]
    with pytest.raises(BackendError, match="LLM_ALLOWED_BASE_URLS|not an http"):
        backend_for(backend="openai", model="m", base_url=url)


def test_backend_for_accepts_listed_base_url_with_trailing_slash(settings):
    settings.LLM_ALLOWED_BASE_URLS = ["https://api.example.org/v1/"]
    backend = backend_for(backend="openai", model="m", base_url="https://api.example.org/v1")
    assert backend.model == "m"


def test_openai_backend_does_not_follow_redirects(stub_server):
    # given an allowed server that redirects to another (here: a second local server)
    from tests.generation.conftest import StubServer

    elsewhere = StubServer()
    try:
        stub_server.default = lambda body: (307, {})
        stub_server.headers = {"Location": f"{elsewhere.base_url}/chat/completions"}
        with pytest.raises(BackendError, match="HTTP 307"):
            _backend(stub_server).generate(REQUEST)
        assert elsewhere.requests == []
    finally:
        elsewhere.close()


def _timed_generate(backend) -> float:
    started = time.monotonic()
    backend.generate(REQUEST)
    return time.monotonic() - started


def test_openai_backend_waits_as_long_as_retry_after_asks(stub_server):
    # given a server that answers 429 once, asking for a 1.2 s pause
    stub_server.script = [(429, ERROR, 0)]
    stub_server.headers = {"Retry-After": "1.2"}
    # when the backend's own backoff would wait only 10 ms
    elapsed = _timed_generate(_backend(stub_server, max_retries=2))
    # then it waited for the server, and the retry succeeded
    assert elapsed >= 1.2
    assert len(stub_server.requests) == 2


def test_openai_backend_retry_after_503_as_http_date(stub_server):
    from email.utils import formatdate

    stub_server.script = [(503, ERROR, 0)]
    stub_server.headers = {"Retry-After": formatdate(time.time() + 2, usegmt=True)}
    elapsed = _timed_generate(_backend(stub_server, max_retries=2))
    # an HTTP date has whole seconds: at least ~1 s of the 2 s asked for is left
    assert 0.9 <= elapsed < 4
    assert len(stub_server.requests) == 2


def test_openai_backend_retry_after_is_capped(stub_server):
    stub_server.script = [(429, ERROR, 0)]
    stub_server.headers = {"Retry-After": "3600"}
    elapsed = _timed_generate(_backend(stub_server, max_retries=2, retry_after_cap=0.4))
    assert 0.4 <= elapsed < 2
    assert len(stub_server.requests) == 2


def test_openai_backend_retry_after_never_shortens_backoff(stub_server):
    stub_server.script = [(429, ERROR, 0)]
    stub_server.headers = {"Retry-After": "0"}
    backend = OpenAICompatBackend(base_url=stub_server.base_url, model="stub", backoff_base=0.6)
    assert _timed_generate(backend) >= 0.6
    assert len(stub_server.requests) == 2


def test_openai_backend_ignores_retry_after_on_500(stub_server):
    stub_server.script = [(500, ERROR, 0)]
    stub_server.headers = {"Retry-After": "5"}
    assert _timed_generate(_backend(stub_server, max_retries=2)) < 2


def test_openai_backend_default_retry_after_cap_is_30_seconds(stub_server):
    backend = _backend(stub_server)
    assert backend.retry_after_cap == 30.0
