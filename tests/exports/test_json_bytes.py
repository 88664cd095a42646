"""The fast JSON paths write the bytes json.dumps wrote, so files and row hashes stay the same."""

import hashlib
import json
import random

from medmax_review.exports.changelog import row_hash
from medmax_review.exports.writers.base import json_compact

# Every control character, the escapes, the BMP up to CJK, line separators, astral characters.
CHARS = [chr(i) for i in range(0x3100)] + ["\u2028", "\u2029", "\ufeff", "\U0001f600", "\U00010348"]


def _strings(count: int) -> list[str]:
    rng = random.Random(11)
    return ["".join(rng.choices(CHARS, k=rng.randint(0, 40))) for _ in range(count)]


def test_json_compact_equals_json_dumps_for_rows_without_floats():
    for text in CHARS + _strings(2000):
        row = {"text": text, "image_path": None, "n": 12, "ok": True, "parts": [{"t": text}]}
        assert json_compact(row) == json.dumps(
            row, ensure_ascii=False, separators=(",", ":")
        ).encode()


def test_json_compact_with_floats_keeps_json_spelling():
    row = {"scores": {"grounding": 1e-05, "phi": 0.1}}
    assert json_compact(row, floats=True) == b'{"scores":{"grounding":1e-05,"phi":0.1}}'


def test_row_hash_is_the_hash_of_json_dumps():
    for text in _strings(500):
        parts = [text, "ab" * 32, "vqa", f"src {text[:3]}", "no"]
        expected = hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:20]
        assert row_hash(text=parts[0], image=parts[1], task=parts[2], source=parts[3],
                        credential=parts[4]) == expected
