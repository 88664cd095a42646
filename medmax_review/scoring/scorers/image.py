"""Image quality: decodable, big enough, not blank, and not a (near-)duplicate of another image."""

from dataclasses import dataclass
from pathlib import Path
from typing import IO

from PIL import Image, ImageStat

from medmax_review.scoring.scorers.base import ScoreResult, evidence

NAME = "image"
MIN_SIDE = 64  # pixels; smaller images carry too little detail to review or train on
BLANK_STDDEV = 2.0  # grey-level standard deviation under which an image is near-blank
HASH_BITS = 64
BAND_BITS = 8
NEAR_DUPLICATE_DISTANCE = 5  # dHash Hamming distance; re-encoded/resized copies stay under it


@dataclass(frozen=True)
class ImageFacts:
    decodable: bool
    error: str = ""
    width: int = 0
    height: int = 0
    stddev: float = 0.0
    dhash: int = 0


def difference_hash(im: Image.Image) -> int:
    """64-bit dHash: is each pixel brighter than its right neighbour, on a 9x8 grey thumbnail."""
    small = im.convert("L").resize((9, 8), Image.Resampling.LANCZOS)
    px = small.tobytes()  # one byte per pixel in mode "L"
    bits = 0
    for row in range(8):
        for col in range(8):
            bits = (bits << 1) | (px[row * 9 + col] > px[row * 9 + col + 1])
    return bits


def image_inspect(source: Path | IO[bytes]) -> ImageFacts:
    """What Pillow sees in an image file (a path or an open file)."""
    try:
        with Image.open(source) as im:
            im.load()
            grey = im.convert("L")
            return ImageFacts(
                decodable=True, width=im.width, height=im.height,
                stddev=round(ImageStat.Stat(grey).stddev[0], 3), dhash=difference_hash(im),
            )
    except Exception as exc:  # Pillow raises many types for broken files
        return ImageFacts(decodable=False, error=f"{type(exc).__name__}: {exc}")


def hash_bands(value: int) -> list[int]:
    """The hash cut into 8-bit bands. Two hashes within NEAR_DUPLICATE_DISTANCE bits share at least
    8 - 5 = 3 bands exactly (pigeonhole), so looking up equal bands finds every near duplicate."""
    count = HASH_BITS // BAND_BITS
    mask = (1 << BAND_BITS) - 1
    return [(value >> (BAND_BITS * i)) & mask for i in range(count)]


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def score_image(
    facts: ImageFacts, *, same_image_records: list[str], near_duplicates: list[tuple[str, int]]
) -> ScoreResult:
    """same_image_records: other records of the project with the same bytes (sha256);
    near_duplicates: (other image, Hamming distance) for perceptually close images."""
    if not facts.decodable:
        return ScoreResult(NAME, 0.0, evidence=[evidence(
            "decodable", f"the image cannot be decoded ({facts.error})")])
    found, value = [], 1.0
    if min(facts.width, facts.height) < MIN_SIDE:
        found.append(evidence(
            "too_small", f"the image is {facts.width}x{facts.height} pixels, under {MIN_SIDE}"))
        value = min(value, 0.3)
    if facts.stddev < BLANK_STDDEV:
        found.append(evidence(
            "near_blank", f"the image is nearly blank (grey-level deviation {facts.stddev:.1f})"))
        value = min(value, 0.1)
    if same_image_records:
        shown = ", ".join(same_image_records[:10])
        found.append(evidence(
            "exact_duplicate",
            f"the same image (same SHA-256) is used by {len(same_image_records)} other record(s): {shown}"))
        value = min(value, 0.7)
    if near_duplicates:
        shown = ", ".join(f"{label} (distance {d})" for label, d in near_duplicates[:10])
        found.append(evidence("near_duplicate", f"perceptually near-identical image(s): {shown}"))
        value = min(value, 0.5)
    return ScoreResult(NAME, value, evidence=found)
