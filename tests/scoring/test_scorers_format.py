"""The format scorer: MedMax rules, empty, too short, repetitive, refusals."""

from medmax_review.core.medmax import IMAGE_CAPTIONING, IMAGE_NONE, SEPARATOR
from medmax_review.scoring.scorers.format import score_format

from .conftest import item_for


def test_format_faithful_vqa_answer_passes(demo_rows):
    result = score_format(item_for(demo_rows["vqarad-1582"], response="Right"))
    assert result.value == 1.0 and result.evidence == []


def test_format_two_separators_fail(demo_rows):
    item = item_for(demo_rows["vqarad-1582"], response=f"Right{SEPARATOR}Left")
    result = score_format(item)
    assert result.band == "fail"
    assert any("exactly one" in e["text"] and "found 2" in e["text"] for e in result.evidence)


def test_format_extra_image_placeholder_fails(demo_rows):
    item = item_for(demo_rows["vqarad-1582"], response="Right <image>")
    assert any("placeholders" in e["text"] for e in score_format(item).evidence)


def test_format_refusal_fails_with_span(demo_rows):
    response = "I'm sorry, but as an AI I cannot interpret medical images."
    result = score_format(item_for(demo_rows["vqarad-1582"], response=response))
    spans = [response[slice(*e["spans"][0])] for e in result.evidence if e["rule"] == "refusal"]
    assert spans == ["I'm sorry", "as an AI", "I cannot"] and result.value == 0.0


def test_format_empty_response_fails(demo_rows):
    result = score_format(item_for(demo_rows["vqarad-1582"], response="  "))
    assert "empty" in [e["rule"] for e in result.evidence] and result.band == "fail"


def test_format_short_caption_is_fair(demo_rows):
    row = demo_rows["skimage-retina"]
    result = score_format(item_for(row, response="Retina.", task=IMAGE_CAPTIONING))
    assert [e["rule"] for e in result.evidence] == ["too_short"] and result.band == "fair"


def test_format_repetitive_response_is_poor(demo_rows):
    row = demo_rows["skimage-retina"]
    response = "The retina is normal. " * 6
    result = score_format(item_for(row, response=response, task=IMAGE_CAPTIONING))
    (ev,) = [e for e in result.evidence if e["rule"] == "repetitive"]
    assert len(ev["spans"]) >= 4 and result.band == "poor"


def test_format_too_long_text_fails(demo_rows):
    row = demo_rows["skimage-retina"]
    item = item_for(row, response="word " * 1100, task=IMAGE_CAPTIONING)  # one token per word
    assert any("2048-token" in e["text"] for e in score_format(item).evidence)


def test_format_placeholder_without_image_fails(demo_rows):
    item = item_for(demo_rows["vqarad-1582"], response="Right <image>", image_position=IMAGE_NONE)
    assert any("no image" in e["text"] for e in score_format(item).evidence)


def test_format_chinese_answer_counts_as_words(demo_rows):
    row = demo_rows["slake-9023"]  # a Chinese SLAKE question, answered "圆形" (round)
    result = score_format(item_for(row, response=row["answer"]))
    assert result.value == 1.0, result.evidence
