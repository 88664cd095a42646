"""Generation backends: template (deterministic), local (SmolLM2 GGUF), openai (compatible)."""

from django.conf import settings

from medmax_review.generation.backends.base import (
    Backend,
    BackendError,
    BackendUnavailable,
    GenerationRequest,
    GenerationResult,
)
from medmax_review.generation.models import BACKEND_LOCAL, BACKEND_OPENAI, BACKEND_TEMPLATE

__all__ = [
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "GenerationRequest",
    "GenerationResult",
    "backend_for",
]


def backend_for(*, backend: str, model: str = "", base_url: str = "", parameters: dict | None = None) -> Backend:
    """The backend a job asked for. Raises BackendError when it cannot be used here."""
    parameters = parameters or {}
    if backend == BACKEND_TEMPLATE:
        from medmax_review.generation.backends.template import TemplateBackend

        return TemplateBackend()
    if backend == BACKEND_LOCAL:
        from medmax_review.generation.backends.local import LocalBackend, local_model_problem

        problem = local_model_problem()
        if problem:
            raise BackendError(problem)
        return LocalBackend()
    if backend == BACKEND_OPENAI:
        from medmax_review.generation.backends.openai_compat import (
            OpenAICompatBackend,
            base_url_problem,
        )

        # The server's own OPENAI_BASE_URL is trusted; a job's URL must be on the allow-list.
        url = base_url or settings.OPENAI_BASE_URL
        if not url:
            raise BackendError("no base URL: set OPENAI_BASE_URL or give the job one")
        if base_url:
            problem = base_url_problem(base_url)
            if problem:
                raise BackendError(problem)
        name = model or settings.OPENAI_MODEL
        if not name:
            raise BackendError("no model: set OPENAI_MODEL or give the job one")
        return OpenAICompatBackend(
            base_url=url,
            model=name,
            vision=bool(parameters.get("vision")),
            pin=bool(base_url),
            response_format=parameters.get("response_format", "json_object"),
        )
    raise BackendError(f"unknown backend {backend!r}")
