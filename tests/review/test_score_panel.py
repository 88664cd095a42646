"""The review screen's score panel: value with band, what was checked against what and how,
findings with their words, n/a for a check with nothing to look at, disagreements said."""

from medmax_review.review.score_panel import marked_texts, score_panel

TEXTS = {"instruction": "Which lung?", "response": "The left lung is clear.", "context": ""}
SOURCES = {"question": "Which lung has an opacity?", "answer": "Right"}


def _rows(scores):
    return {row["name"]: row for row in score_panel(scores=scores, texts=TEXTS, sources=SOURCES)}


def test_every_score_says_what_it_checked_against_what_and_how():
    rows = _rows({
        "grounding": {"value": 0.8, "band": "good", "evidence": [
            {"rule": "method", "text": "method: lexical overlap only (embedding model not installed)"}]},
        "phi": {"value": 1.0, "band": "good", "evidence": []},
        "custom": {"value": 0.3},
    })
    grounding, phi, custom = rows["grounding"], rows["phi"], rows["custom"]
    assert grounding["method"] == "lexical overlap only (embedding model not installed)"
    assert grounding["against"] == ['question: "Which lung has an opacity?"', 'answer: "Right"']
    assert grounding["findings"] == [] and (grounding["value"], grounding["band"]) == (0.8, "good")
    assert phi["against"] == ["the candidate's own text (no source needed)"] and phi["method"]
    assert custom["band"] == "unknown"  # no band stored: not guessed from the value
    assert all(row["checks"] and row["method"] and row["against"] for row in rows.values())


def test_nothing_to_check_reads_n_a_also_for_scores_stored_before_n_a():
    rows = _rows({
        "grounding": {"value": 1.0, "band": "good", "evidence": [
            {"rule": "lexical", "text": "the response has no content words to check", "field": "response"}]},
        "consistency": {"value": 1.0, "band": "n/a", "evidence": [
            {"rule": "nothing_to_check", "text": "the record has no source text or modality to check against"}]},
    })
    for row in rows.values():
        assert (row["band"], row["band_class"], row["value"]) == ("n/a", "na", None)
        assert row["nothing_to_check"] and row["findings"] == []


def test_findings_carry_their_words_and_the_marks_their_reasons():
    scores = {"consistency": {"value": 0.0, "band": "fail", "evidence": [
        {"rule": "laterality", "text": 'response says "left" but the source says "right"',
         "field": "response", "spans": [[4, 8]]}]}}
    (finding,) = _rows(scores)["consistency"]["findings"]
    assert finding["words"] == ["left"] and finding["rule"] == "laterality"
    marked = marked_texts(scores=scores, texts=TEXTS)["response"]
    assert marked == [("The ", ()), ("left", ('Consistency · laterality: response says "left" but '
                                               'the source says "right"',)), (" lung is clear.", ())]


def test_a_good_score_contradicted_by_a_related_one_says_why():
    rows = _rows({
        "image": {"value": 0.5, "band": "fair", "evidence": [
            {"rule": "near_duplicate", "text": "perceptually near-identical image(s): vqa_rad:7 (distance 3)"}]},
        "near_duplicate": {"value": 1.0, "band": "good", "evidence": []},
        "phi": {"value": 1.0, "band": "good", "evidence": []},
    })
    assert "compares pixels" in rows["near_duplicate"]["notes"][0]
    assert "near-identical image" in rows["near_duplicate"]["notes"][0]
    assert rows["image"]["differs_from"] == ["Near-duplicate text"]
    assert rows["phi"]["notes"] == []
