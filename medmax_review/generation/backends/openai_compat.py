"""Any OpenAI-compatible chat server: OpenAI, vLLM, Ollama, llama.cpp's server.

The API key always comes from the worker's settings, never from the job or the broker. Retries
are ours (the client is built with max_retries=0): only transient failures (429, 5xx, connection
errors, timeouts) are retried, with exponential backoff and a cap; a 429 or 503 that asks for
a longer pause in Retry-After gets it, up to RETRY_AFTER_CAP_SECONDS.
"""

import base64
import ssl
import threading
import time
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx
import openai
from django.conf import settings

from medmax_review.core.medmax import estimate_text_tokens
from medmax_review.generation.backends.addresses import resolve
from medmax_review.generation.backends.base import (
    BackendError,
    BackendUnavailable,
    GenerationRequest,
    GenerationResult,
)
from medmax_review.generation.backends.server_text import server_text

NAME = "openai"
RESPONSE_FORMATS = ("json_object", "json_schema", "none")
# A server asking for a longer pause than this is not waited for: the item waits this long at
# most, and the job stops (resumable) when the retries run out.
RETRY_AFTER_CAP_SECONDS = 30.0


def _normal(url: str) -> str:
    return url.strip().rstrip("/")


def base_url_problem(url: str) -> str:
    """Why a job may not use this base URL ("" when it may): only listed URLs are allowed."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"base URL {url!r} is not an http(s) URL"
    allowed = {_normal(u) for u in settings.LLM_ALLOWED_BASE_URLS}
    if _normal(url) not in allowed:
        return (
            f"base URL {url!r} is not in LLM_ALLOWED_BASE_URLS; an administrator of the server "
            "must add it there first"
        )
    return resolve(url.strip()).problem


def retry_after_seconds(exc: Exception) -> float | None:
    """The pause a 429/503 answer asks for in its Retry-After header (seconds or HTTP date)."""
    if getattr(exc, "status_code", None) not in (429, 503):
        return None
    response = getattr(exc, "response", None)
    value = (response.headers.get("retry-after") or "").strip() if response is not None else ""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None  # unreadable: the computed backoff applies
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


_tls_lock = threading.Lock()
_tls: list[ssl.SSLContext] = []  # built once per process (a context holds no connection)


def _http_client():
    """A job's own HTTP client (its own connections), sharing the process's TLS context:
    loading the CA bundle is what makes a client cost about 0.1 s a job. An allowed server must
    not bounce requests on to an address that is not allowed: redirects are not followed."""
    with _tls_lock:
        if not _tls:
            _tls.append(httpx.create_ssl_context())  # httpx's own default
    return openai.DefaultHttpxClient(follow_redirects=False, verify=_tls[0])


def _transient(exc: Exception) -> bool:
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, openai.APIConnectionError)  # includes timeouts


class OpenAICompatBackend:
    name = NAME

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        vision: bool = False,
        response_format: str = "json_object",
        max_retries: int | None = None,
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        retry_after_cap: float = RETRY_AFTER_CAP_SECONDS,
        timeout: float | None = None,
        concurrency: int | None = None,
        pin: bool = False,
    ):
        self.base_url = base_url
        self.model = model
        self.vision = vision
        self.response_format = response_format
        self.max_retries = settings.LLM_MAX_RETRIES if max_retries is None else max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.retry_after_cap = retry_after_cap
        self.concurrency = concurrency or settings.LLM_CONCURRENCY
        # A job's own URL is pinned to the address its allow-list check saw (see addresses).
        target = resolve(base_url) if pin else None
        if target is not None and target.problem:
            raise BackendError(target.problem)
        self.client = openai.OpenAI(
            base_url=target.url if target else base_url,
            api_key=settings.OPENAI_API_KEY or "not-needed",
            default_headers={"Host": target.host_header} if target and target.host_header else None,
            timeout=settings.LLM_TIMEOUT_SECONDS if timeout is None else timeout,
            max_retries=0,
            http_client=_http_client(),
        )

    def _messages(self, request: GenerationRequest) -> list[dict]:
        if not (self.vision and request.image):
            return request.messages
        data = base64.b64encode(request.image).decode()
        url = f"data:{request.image_mime or 'image/png'};base64,{data}"
        messages = [dict(m) for m in request.messages]
        last = messages[-1]
        last["content"] = [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": last["content"]},
        ]
        return messages

    def _format(self, request: GenerationRequest) -> dict:
        if self.response_format == "json_schema" and request.json_schema:
            return {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "instruction_pair", "schema": request.json_schema},
                }
            }
        if self.response_format == "json_object":
            return {"response_format": {"type": "json_object"}}
        return {}

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_cap, self.backoff_base * (2**attempt))

    def pause(self, attempt: int, error: Exception | None) -> float:
        """Seconds to wait before retry `attempt`: the server's Retry-After when it asks for
        longer than our backoff, capped; never shorter than the backoff."""
        backoff = self.backoff(attempt)
        asked = retry_after_seconds(error) if error is not None else None
        if asked is None:
            return backoff
        return max(backoff, min(asked, self.retry_after_cap))

    def generate(self, request: GenerationRequest) -> GenerationResult:
        messages = self._messages(request)
        last_error: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.pause(attempt - 1, last_error))
            try:
                response = self.client.chat.completions.create(
                    model=self.model,
                    messages=messages,
                    temperature=request.temperature,
                    max_tokens=request.max_tokens,
                    seed=request.seed,
                    **self._format(request),
                )
            except openai.APIStatusError as exc:
                if not _transient(exc):
                    raise BackendError(
                        f"HTTP {exc.status_code} from {self.base_url}: {server_text(exc.message)}"
                    ) from exc
                last_error = exc
            except openai.APIConnectionError as exc:
                last_error = exc
            except (openai.OpenAIError, ValueError) as exc:
                raise BackendError(
                    f"malformed response from {self.base_url}: {server_text(exc)}") from exc
            else:
                return self._result(request, response)
        raise BackendUnavailable(
            f"{self.base_url} failed {self.max_retries + 1} times; last error: "
            f"{type(last_error).__name__}: {server_text(last_error)}"
        )

    def _result(self, request: GenerationRequest, response) -> GenerationResult:
        if not getattr(response, "choices", None):
            raise BackendError(f"malformed response from {self.base_url}: no choices")
        choice = response.choices[0]
        message = choice.message
        text = (message.content if message else None) or getattr(message, "refusal", None) or ""
        usage = response.usage
        prompt_text = " ".join(str(m.get("content", "")) for m in request.messages)
        return GenerationResult(
            text=text,
            prompt_tokens=usage.prompt_tokens if usage else estimate_text_tokens(prompt_text),
            completion_tokens=usage.completion_tokens if usage else estimate_text_tokens(text),
            model=response.model or self.model,
            finish_reason=choice.finish_reason or "stop",
        )
