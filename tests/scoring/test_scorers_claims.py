"""Claim-level consistency on real VQA-RAD and SLAKE rows: ConText negation and uncertainty,
question polarity, a claim per side named, numbers in any spelling, modality synonyms."""

import pytest

from medmax_review.core.medmax import IMAGE_CAPTIONING
from medmax_review.scoring.scorers.assertion import parse
from medmax_review.scoring.scorers.consistency import score_consistency
from medmax_review.scoring.scorers.quantities import quantities, same

from .conftest import item_for


def _rules(row, response, **kw):
    return [e["rule"] for e in score_consistency(item_for(row, response=response, **kw)).evidence]


def test_context_scope_negation_and_uncertainty():
    parsed = parse("No fracture of the humerus; possible small effusion, but the liver is normal.")
    status = {t.text: (t.negated, t.uncertain) for t in parsed.terms}
    assert status["fracture"] == (True, False) and status["humerus"] == (True, False)
    # The semicolon ends the negation's scope; "possible" makes the effusion uncertain.
    assert status["effusion"] == (False, True) and status["liver"] == (False, False)
    assert len(parsed.claims) == 3


@pytest.mark.parametrize("response", [
    "The left humerus is not fractured.",
    "No fracture is seen in the left humerus.",
    "No, the left humerus is intact.",
    "A fracture of the humerus cannot be excluded.",  # hedged: asserts nothing to contradict
])
def test_no_answer_faithful_prose_passes(demo_rows, response):
    # vqa_rad "Is there a fracture of the left humerus?" -> "No"
    assert _rules(demo_rows["vqarad-629"], response) == []


@pytest.mark.parametrize("response", [
    "There is a fracture of the humerus.",
    "There is a fracture of the left humerus, but it is not displaced.",
    "The humerus shows a fracture.",
])
def test_no_answer_contradicted_in_prose_fails(demo_rows, response):
    row = demo_rows["vqarad-629"]
    result = score_consistency(item_for(row, response=response))
    (ev,) = [e for e in result.evidence if e["rule"] == "negation"]
    assert response[slice(*ev["spans"][0])] == "fracture" and result.band == "fail"
    assert ev["source_words"] == ["Is there a fracture of the left humerus? No"]


def test_negative_question_polarity_decides_the_assertion(demo_rows):
    # vqa_rad "How can you tell there is no pneumothorax present?": the question denies it.
    row = demo_rows["vqarad-1133"]
    assert "negation" in _rules(row, "A pneumothorax is present on the left.")
    assert _rules(row, "Lung markings reach the chest wall, so there is no pneumothorax.") == []


def test_no_denies_the_finding_not_its_modifiers(demo_rows):
    row = demo_rows["vqarad-1884"]  # "Is there a pleural effusion present?" -> "No"
    assert _rules(row, "The pleural space is clear.") == []
    assert _rules(row, "A small pleural effusion is present.") == ["negation"]


def test_yes_answer_denied_in_prose_fails(demo_rows):
    row = demo_rows["vqarad-204"]  # "Is there atrophy of the brain?" -> "Yes"
    assert _rules(row, "There is atrophy of the brain.") == []
    assert _rules(row, "The brain shows no atrophy.") == ["negation"]


@pytest.mark.parametrize(("response", "wrong"), [
    ("Both lungs have diffuse opacification.", True),
    ("Diffuse opacification is seen in the left lung and the right lung.", True),
    ("Opacification is bilateral.", True),
    ("Right-sided diffuse opacification.", False),
    ("The right lung, not the left, has diffuse opacification.", False),
    ("Opacification involves the right lung and spares the left.", False),
    ("The left lung is spared; the right lung is diffusely opacified.", False),
    ("The right lung is diffusely opacified.", False),
])
def test_laterality_each_side_named_is_a_claim(demo_rows, response, wrong):
    row = demo_rows["vqarad-1582"]  # "Which lung has diffuse opacification?" -> "Right"
    assert ("laterality" in _rules(row, response)) is wrong


@pytest.mark.parametrize(("row_id", "faithful", "wrong"), [
    ("vqarad-2234", "Twelve ribs are superimposed on the lung fields.", "There are eleven ribs."),
    ("vqarad-1488", "The mass is in the fourth ventricle.", "The mass is in the third ventricle."),
    ("vqarad-1168", "The L2-L3 level is seen.", "This is the L4-L5 level."),
    ("vqarad-1625", "The mass measures 0.5 cm.", "The mass measures 7 millimetres."),
    ("vqarad-1511", "Four gallstones are identified.", "Two gallstones are identified."),
])
def test_numbers_in_any_spelling(demo_rows, row_id, faithful, wrong):
    row = demo_rows[row_id]
    assert _rules(row, faithful) == []
    result = score_consistency(item_for(row, response=wrong))
    assert [e["rule"] for e in result.evidence] == ["number"] and result.band == "fail"


def test_units_are_normalised():
    (a,), (b,), (c,) = quantities("2 cm"), quantities("20 mm"), quantities("2 mm")
    assert same(a, b) and not same(a, c)
    assert [q.level for q in quantities("C5-C6 and L4")] == ["C5-C6", "L4"]


@pytest.mark.parametrize(("row_id", "faithful", "wrong"), [
    ("slake-4114", "This computed tomography image shows the abdomen.",
     "This T2-weighted image shows the abdomen."),
    ("slake-4114", "This is not an MRI; it is a CT.", "An axial sonogram of the abdomen."),
])
def test_modality_synonyms_and_negated_mentions(demo_rows, row_id, faithful, wrong):
    row = demo_rows[row_id]  # a SLAKE CT
    assert _rules(row, faithful) == []
    assert _rules(row, wrong) == ["modality"]


def test_caption_negation_scope(demo_rows):
    row = dict(demo_rows["skimage-retina"],
               caption="Fundus photograph; no haemorrhage, but drusen are present.")
    item = item_for(row, response="Fundus photograph showing drusen without haemorrhage.",
                    task=IMAGE_CAPTIONING)
    assert score_consistency(item).evidence == []
    item = item_for(row, response="Fundus photograph with haemorrhage and no drusen.",
                    task=IMAGE_CAPTIONING)
    assert sorted(e["text"].split('"')[1] for e in score_consistency(item).evidence) == [
        "drusen", "haemorrhage"]


@pytest.fixture
def without_medspacy(monkeypatch):
    """A process where medspaCy is not installed: the cue-list fallback decides."""
    import sys

    from medmax_review.scoring.scorers import assertion

    monkeypatch.setitem(sys.modules, "medspacy", None)
    monkeypatch.setattr(assertion, "_state", {})
    parse.cache_clear()
    yield
    parse.cache_clear()


def test_without_medspacy_the_fallback_decides_and_says_so(demo_rows, without_medspacy):
    row = demo_rows["vqarad-629"]  # "Is there a fracture of the left humerus?" -> "No"
    faithful = score_consistency(item_for(row, response="No fracture is seen in the left humerus."))
    assert [e["rule"] for e in faithful.evidence] == ["method"]
    assert "medspaCy is not installed" in faithful.evidence[0]["text"]
    wrong = score_consistency(item_for(row, response="There is a fracture of the humerus."))
    assert "negation" in [e["rule"] for e in wrong.evidence]
    status = {t.text: (t.negated, t.uncertain) for t in parse(
        "No fracture of the humerus; possible small effusion, but the liver is normal.").terms}
    assert status["fracture"] == (True, False) and status["effusion"] == (False, True)
    assert status["liver"] == (False, False)
