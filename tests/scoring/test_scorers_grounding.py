"""The grounding scorer: share of response content words the source supports."""

from medmax_review.core.medmax import IMAGE_CAPTIONING
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
