"""The one small interface every generation backend implements."""

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class GenerationRequest:
    """One call to a model: chat messages plus, optionally, the record's image."""

    messages: list[dict]
    task: str = ""
    # The record's source text, by field name; the template backend works from these directly.
    fields: dict = field(default_factory=dict)
    image: bytes | None = None
    image_mime: str = ""
    temperature: float = 0.7
    max_tokens: int = 512
    json_schema: dict | None = None
    # Varies with the sample index, so samples of one record differ but stay reproducible.
    seed: int = 0


@dataclass(frozen=True)
class GenerationResult:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    finish_reason: str = "stop"


class BackendError(Exception):
    """This one item cannot be generated (e.g. HTTP 400); the job goes on and records it."""


class BackendUnavailable(Exception):
    """The server stayed unreachable after retries; the job stops and can be resumed later."""


class Backend(Protocol):
    name: str
    model: str
    # How many requests may be in flight at once.
    concurrency: int

    def generate(self, request: GenerationRequest) -> GenerationResult: ...
