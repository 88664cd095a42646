"""MinHash signatures and LSH band keys for near-duplicate candidates."""

from medmax_review.scoring.scorers.near_duplicate import (
    SIMILAR,
    lsh_bands,
    minhash,
    score_near_duplicate,
    similarity,
)

CAPTION = (
    "Human retina. This image of a retina is useful for demonstrations requiring circular images, "
    "a fundus photograph of a normal left eye."
)


def test_near_duplicate_small_edit_is_similar_and_shares_a_band():
    a, b = minhash(CAPTION), minhash(CAPTION.replace("normal", "healthy"))
    assert similarity(a, b) >= 0.6
    assert set(lsh_bands(a)) & set(lsh_bands(b))


def test_near_duplicate_unrelated_text_is_dissimilar():
    a = minhash(CAPTION)
    b = minhash("Axial CT of the abdomen shows the liver, spleen and both kidneys without lesions.")
    assert similarity(a, b) < 0.2
    assert not set(lsh_bands(a)) & set(lsh_bands(b))


def test_near_duplicate_signature_is_deterministic():
    assert minhash(CAPTION) == minhash(CAPTION) and similarity(minhash(CAPTION), minhash(CAPTION)) == 1


def test_near_duplicate_score_names_other_candidate():
    result = score_near_duplicate([(17, 1.0), (12, SIMILAR)])
    assert result.band == "fail" and "candidate 17 (100% similar)" in result.evidence[0]["text"]
    assert score_near_duplicate([]).value == 1.0
