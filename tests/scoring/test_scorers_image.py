"""The image scorer's pure parts: inspection, the difference hash and its bands, the verdict."""

import io

from PIL import Image

from medmax_review.scoring.scorers.image import (
    NEAR_DUPLICATE_DISTANCE,
    hamming,
    hash_bands,
    image_inspect,
    score_image,
)


def _altered_copy(path, tmp_path):
    """The demo image resized to 80% and re-encoded as JPEG at quality 70."""
    with Image.open(path) as im:
        smaller = im.convert("RGB").resize((int(im.width * 0.8), int(im.height * 0.8)))
    target = tmp_path / "copy.jpg"
    smaller.save(target, "JPEG", quality=70)
    return target


def test_image_inspect_real_demo_image(demo_data):
    facts = image_inspect(demo_data / "vqa_rad/images/synpic35191.jpg")
    assert facts.decodable and facts.width >= 64 and facts.stddev > 10
    assert score_image(facts, same_image_records=[], near_duplicates=[]).value == 1.0


def test_image_near_duplicate_hash_close_and_sharing_bands(demo_data, tmp_path):
    original = demo_data / "vqa_rad/images/synpic35191.jpg"
    a = image_inspect(original).dhash
    b = image_inspect(_altered_copy(original, tmp_path)).dhash
    assert hamming(a, b) <= NEAR_DUPLICATE_DISTANCE
    shared = sum(x == y for x, y in zip(hash_bands(a), hash_bands(b), strict=True))
    assert shared >= 8 - NEAR_DUPLICATE_DISTANCE


def test_image_different_demo_images_are_far_apart(demo_data):
    a = image_inspect(demo_data / "vqa_rad/images/synpic35191.jpg").dhash
    b = image_inspect(demo_data / "skimage/images/retina.jpg").dhash
    assert hamming(a, b) > NEAR_DUPLICATE_DISTANCE


def test_image_broken_file_fails(demo_data, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((demo_data / "vqa_rad/images/synpic35191.jpg").read_bytes()[:300])
    result = score_image(image_inspect(broken), same_image_records=[], near_duplicates=[])
    assert result.band == "fail" and result.evidence[0]["rule"] == "decodable"


def test_image_blank_and_tiny_are_flagged(tmp_path):
    path = tmp_path / "blank.png"
    Image.new("L", (32, 32), 128).save(path)
    result = score_image(image_inspect(path), same_image_records=[], near_duplicates=[])
    assert {e["rule"] for e in result.evidence} == {"too_small", "near_blank"}
    assert result.band == "fail"


def test_image_duplicates_named_in_evidence(demo_data):
    facts = image_inspect(demo_data / "skimage/images/retina.jpg")
    result = score_image(facts, same_image_records=["vqarad:vqarad-2157"],
                         near_duplicates=[("skimage:copy", 3)])
    texts = " ".join(e["text"] for e in result.evidence)
    assert "vqarad:vqarad-2157" in texts and "skimage:copy (distance 3)" in texts
    assert result.band == "fair"


def test_image_png_bytes_roundtrip(tmp_path):
    buf = io.BytesIO()
    Image.effect_noise((128, 128), 60).save(buf, "PNG")
    path = tmp_path / "noise.png"
    path.write_bytes(buf.getvalue())
    assert image_inspect(path).stddev > 10
