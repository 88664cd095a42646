"""The consistency scorer on real VQA-RAD and SLAKE rows, faithful and altered."""

from medmax_review.core.medmax import IMAGE_CAPTIONING
from medmax_review.scoring.scorers.consistency import score_consistency

from .conftest import item_for


def _rules(result):
    return [e["rule"] for e in result.evidence]


def test_consistency_faithful_laterality_answer_passes(demo_rows):
    # Given vqa_rad "Which lung has diffuse opacification?" -> "Right", answered faithfully
    row = demo_rows["vqarad-1582"]
    for response in ("Right", "The right lung has diffuse opacification."):
        result = score_consistency(item_for(row, response=response))
        assert result.value == 1.0 and result.band == "good", result.evidence


def test_consistency_swapped_laterality_fails_with_span(demo_rows):
    row = demo_rows["vqarad-1582"]
    response = "The left lung has diffuse opacification."
    result = score_consistency(item_for(row, response=response))
    assert result.band == "fail"
    (ev,) = [e for e in result.evidence if e["rule"] == "laterality"]
    start, end = ev["spans"][0]
    assert response[start:end] == "left" and ev["field"] == "response"
    assert "right" in ev["text"]


def test_consistency_changed_number_fails(demo_rows):
    # Given vqa_rad "How large is the mass?" -> "5mm"
    row = demo_rows["vqarad-1625"]
    assert score_consistency(item_for(row, response="The mass measures 5 mm.")).value == 1.0
    response = "The mass measures 7 mm."
    result = score_consistency(item_for(row, response=response))
    (ev,) = [e for e in result.evidence if e["rule"] == "number"]
    assert result.band == "fail"
    assert response[slice(*ev["spans"][0])] == "7 mm" and "5 mm" in ev["text"]


def test_consistency_wrong_modality_fails(demo_rows):
    # Given a SLAKE CT record
    row = demo_rows["slake-4114"]
    assert row["meta"]["modality"] == "CT"
    assert score_consistency(item_for(row, response="Yes, this is a CT scan.")).value == 1.0
    response = "Yes, this is an MRI of the abdomen."
    result = score_consistency(item_for(row, response=response))
    (ev,) = [e for e in result.evidence if e["rule"] == "modality"]
    assert response[slice(*ev["spans"][0])] == "MRI" and "CT" in ev["text"]
    assert result.value == 0.0


def test_consistency_yes_no_flip_fails(demo_rows):
    # Given vqa_rad "Is there a fracture of the left humerus?" -> "No"
    row = demo_rows["vqarad-629"]
    assert score_consistency(item_for(row, response="No, the left humerus is intact.")).value == 1.0
    result = score_consistency(item_for(row, response="Yes, there is a fracture."))
    assert "negation" in _rules(result) and result.band == "fail"


def test_consistency_negation_flip_against_caption_fails(demo_rows):
    # Given a real caption, altered to a "no evidence of" source statement
    row = dict(demo_rows["skimage-retina"], caption="Fundus photograph with no evidence of haemorrhage.")
    faithful = item_for(row, response="Fundus photograph without haemorrhage.", task=IMAGE_CAPTIONING)
    assert score_consistency(faithful).value == 1.0
    flipped = item_for(row, response="Fundus photograph showing a haemorrhage.", task=IMAGE_CAPTIONING)
    result = score_consistency(flipped)
    (ev,) = [e for e in result.evidence if e["rule"] == "negation"]
    assert flipped.response[slice(*ev["spans"][0])] == "haemorrhage"


def test_consistency_unmentioned_organ_is_poor(demo_rows):
    # Given slake "What is the organ on the left side of this image?" -> "Liver"
    row = demo_rows["slake-857"]
    result = score_consistency(item_for(row, response="The kidney is on the left side."))
    assert _rules(result) == ["anatomy"] and result.band == "poor"


def test_consistency_clean_on_every_faithful_demo_answer(demo_rows):
    # Each real VQA answer, given as the response to its own question, contradicts nothing.
    flagged = [
        (row_id, result.evidence)
        for row_id, row in demo_rows.items() if "answer" in row
        if (result := score_consistency(item_for(row, response=row["answer"]))).value < 1
    ]
    assert flagged == []


def test_consistency_instruction_naming_other_modality_fails(demo_rows):
    row = demo_rows["slake-4114"]  # CT
    item = item_for(row, response="Yes.", instruction="Is this ultrasound image taken via CT?")
    (ev,) = score_consistency(item).evidence
    assert ev["field"] == "instruction" and "ultrasound" in ev["text"]


def test_consistency_response_repeating_question_is_not_a_claim(demo_rows):
    row = demo_rows["slake-3482"]  # "Is this a X-Ray?" -> "No" (an MRI)
    assert score_consistency(item_for(row, response="Is this a X-Ray? No.")).value == 1.0
    result = score_consistency(item_for(row, response="No. It is an X-ray."))
    assert [e["rule"] for e in result.evidence] == ["modality"]
