"""The scorers' evaluation set (bench/eval_set.py) and the aim the benchmark reports against."""

import pytest

from bench import bench_scorers, eval_set
from medmax_review.scoring.scorers import grounding


def test_eval_set_covers_every_error_kind_in_both_parts():
    cases = eval_set.build()
    assert cases == eval_set.build()  # deterministic
    kinds = {part: {c.kind for c in cases if c.part == part} for part in eval_set.PARTS}
    expected = {"faithful", "negation", "laterality", "number", "modality", "hallucination",
                *(f"phi_{k}" for k in eval_set.PHI)}
    assert kinds["tuning"] == kinds["held_out"] == expected
    # A record is in one part only, and the parts phrase things differently.
    ids = {part: {c.row["id"] for c in cases if c.part == part} for part in eval_set.PARTS}
    assert not ids["tuning"] & ids["held_out"]
    for tuning, held in eval_set.PHI.values():
        assert not set(tuning) & set(held)
    held_faithful = {c.response for c in cases if c.part == "held_out" and c.kind == "faithful"}
    assert not held_faithful & {c.response for c in cases if c.part == "tuning"}


@pytest.fixture
def lexical_only(monkeypatch):
    monkeypatch.setitem(grounding._model_state, "model", None)


def test_held_out_recall_and_false_flags_meet_the_aim(lexical_only):
    cases = [c for c in eval_set.build() if c.part == "held_out"]
    hits, flags = bench_scorers.evaluate(cases)
    low = {kind: caught / total for (_, kind), (caught, total) in hits.items()
           if caught / total < 0.9}
    assert low == {}
    flagged = {name: n / total for (_, name), (n, total) in flags.items() if n / total > 0.05}
    assert flagged == {}
