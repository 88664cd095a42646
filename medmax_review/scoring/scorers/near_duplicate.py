"""Near-duplicate candidates: MinHash over word shingles, found through LSH bands, never all pairs."""

import re
import zlib

import numpy as np

from medmax_review.scoring.scorers.base import ScoreResult, evidence

NAME = "near_duplicate"
NUM_PERM = 64
BANDS = 16  # 16 bands x 4 rows: pairs above ~0.5 Jaccard very likely share a band
ROWS = NUM_PERM // BANDS
SHINGLE = 3
SIMILAR = 0.8  # estimated Jaccard from which two candidates count as near duplicates

_PRIME = (1 << 61) - 1
_rng = np.random.default_rng(20241216)  # fixed seed: signatures must match across processes
_A = _rng.integers(1, _PRIME, NUM_PERM, dtype=np.uint64)
_B = _rng.integers(0, _PRIME, NUM_PERM, dtype=np.uint64)
_MASK32 = np.uint64(0xFFFFFFFF)


def shingles(text: str) -> set[str]:
    tokens = re.findall(r"\w+", text.lower())
    if len(tokens) < SHINGLE:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1)}


def minhash(text: str) -> list[int]:
    """NUM_PERM 32-bit minimum hashes of the text's word shingles (stable across processes)."""
    grams = shingles(text)
    if not grams:
        return [0] * NUM_PERM
    x = np.array([zlib.crc32(g.encode()) for g in grams], dtype=np.uint64)
    # (a*x + b) mod 2^32 per permutation; uint64 wrap-around keeps it cheap and deterministic.
    hashed = (np.outer(_A, x) + _B[:, None]) & _MASK32
    return hashed.min(axis=1).astype(np.int64).tolist()


def lsh_bands(signature: list[int], *, scope: int = 0) -> list[int]:
    """One 40-bit key per band (band index folded in), for an indexed equality lookup.

    `scope` (the record's image id) is folded in too: the same VQA question asked of many
    different scans is not a duplicate, the same text twice on one image is."""
    keys = []
    for band in range(BANDS):
        rows = signature[band * ROWS : (band + 1) * ROWS]
        digest = zlib.crc32(repr((scope, band, rows)).encode()) | (band << 32)
        keys.append(digest)
    return keys


def similarity(a: list[int], b: list[int]) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / NUM_PERM


def score_near_duplicate(matches: list[tuple[int, float]]) -> ScoreResult:
    """matches: (other candidate id, estimated Jaccard) of candidates at or above SIMILAR."""
    if not matches:
        return ScoreResult(NAME, 1.0)
    matches = sorted(matches, key=lambda m: (-m[1], m[0]))
    shown = ", ".join(f"candidate {cid} ({sim:.0%} similar)" for cid, sim in matches[:10])
    best = matches[0][1]
    return ScoreResult(NAME, round(1 - best, 4) if best < 1 else 0.0, evidence=[evidence(
        "near_duplicate", f"near-duplicate of {shown}", field="text")])
