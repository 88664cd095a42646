"""Recall per injected error and false flags on faithful responses, per scorer, on the tuning and
the held-out part of the evaluation set (bench/eval_set.py), and text-scoring throughput.

    .venv/bin/python bench/bench_scorers.py [--embeddings] [--misses KIND]

Without --embeddings the grounding scorer runs on lexical overlap only (the throughput figure is
always measured that way, on one core).
"""

import argparse
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medmax_review.settings")

import django  # noqa: E402

django.setup()

from bench.eval_set import PARTS, build  # noqa: E402
from medmax_review.core.medmax import IMAGE_BEFORE_INSTRUCTION, VQA  # noqa: E402
from medmax_review.scoring.scorers import assertion, grounding  # noqa: E402
from medmax_review.scoring.scorers.base import ScoreInput  # noqa: E402
from medmax_review.scoring.services import candidate_scores_compute  # noqa: E402

# Which evidence counts as catching each kind of error, and as a false flag on a faithful one.
CATCHES = {
    "negation": lambda s: _has(s, "consistency", "negation"),
    "laterality": lambda s: _has(s, "consistency", "laterality"),
    "number": lambda s: _has(s, "consistency", "number"),
    "modality": lambda s: _has(s, "consistency", "modality"),
    "hallucination": lambda s: _has(s, "grounding", "unsupported_claim")
    or _has(s, "consistency", "anatomy"),
    "phi": lambda s: bool(s["phi"]["evidence"]),
}
FALSE_FLAG = {
    "consistency": lambda s: bool(s["consistency"]["evidence"]),
    "grounding (unsupported claim)": CATCHES["hallucination"],
    "phi": CATCHES["phi"],
}


def _has(scores: dict, scorer: str, rule: str) -> bool:
    return any(e["rule"] == rule for e in scores[scorer]["evidence"])


def item_for(case) -> ScoreInput:
    row = case.row
    return ScoreInput(
        instruction=row["question"], response=case.response, task=VQA,
        image_position=IMAGE_BEFORE_INSTRUCTION, question=row["question"], answer=row["answer"],
        modality=row.get("meta", {}).get("modality", ""), has_image=True,
    )


def evaluate(cases, misses_of: str = ""):
    hits = defaultdict(lambda: [0, 0])  # (part, kind) -> [caught, total]
    flags = defaultdict(lambda: [0, 0])  # (part, scorer) -> [flagged, faithful]
    items = [item_for(c) for c in cases]
    grounding.embeddings_prepare(items)
    for case, item in zip(cases, items, strict=True):
        scores = candidate_scores_compute(item=item)
        for score in scores.values():  # a note on the method used is no finding
            score["evidence"] = [e for e in score["evidence"] if e["rule"] != "method"]
        if case.kind == "faithful":
            for name, flagged in FALSE_FLAG.items():
                cell = flags[(case.part, name)]
                cell[0] += flagged(scores)
                cell[1] += 1
                if flagged(scores) and misses_of == "faithful":
                    print(f"  FLAGGED [{name}] {case.row['question']} | {case.row['answer']} -> "
                          f"{case.response}\n     {[e['text'] for e in scores[name.split()[0]]['evidence']]}")
            continue
        family = "phi" if case.kind.startswith("phi_") else case.kind
        caught = CATCHES[family](scores)
        cell = hits[(case.part, case.kind)]
        cell[0] += caught
        cell[1] += 1
        if not caught and misses_of in (case.kind, family):
            print(f"  MISSED [{case.kind}] {case.row['question']} | {case.row['answer']} -> "
                  f"{case.response}")
    return hits, flags


def throughput(cases) -> float:
    """Candidates per second through every text scorer, lexical grounding, on this one process
    (caches cleared first: each response is parsed once, each source once, as in a real batch)."""
    grounding._model_state["model"] = None
    assertion.parse.cache_clear()
    items = [item_for(c) for c in cases]
    start = time.perf_counter()
    for item in items:
        candidate_scores_compute(item=item)
    return len(items) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--embeddings", action="store_true", help="grounding with the model")
    parser.add_argument("--no-context", action="store_true",
                        help="as if medspaCy were not installed (the cue-list fallback)")
    parser.add_argument("--misses", default="", help="print the cases of this kind missed "
                        "(or 'faithful' for the faithful ones flagged)")
    args = parser.parse_args()
    if not args.embeddings:
        grounding._model_state["model"] = None
    if args.no_context:
        sys.modules["medspacy"] = None  # the import fails: assertion falls back
    cases = build()
    hits, flags = evaluate(cases, misses_of=args.misses)
    kinds = sorted({k for _, k in hits})
    print(f"{'error kind':<22}" + "".join(f"{p + ' recall':>22}" for p in PARTS))
    for kind in kinds:
        cells = [hits[(p, kind)] for p in PARTS]
        print(f"{kind:<22}" + "".join(
            f"{c[0] / c[1]:>14.3f} ({c[0]:>3}/{c[1]:<3})" if c[1] else f"{'-':>22}" for c in cells))
    print(f"\n{'faithful flagged by':<30}" + "".join(f"{p:>22}" for p in PARTS))
    for name in FALSE_FLAG:
        cells = [flags[(p, name)] for p in PARTS]
        print(f"{name:<30}" + "".join(f"{c[0] / c[1]:>14.3f} ({c[0]:>3}/{c[1]:<3})" for c in cells))
    print(f"\n{len(cases)} cases; grounding {'with' if args.embeddings else 'without'} embeddings; "
          f"negation by {assertion.assertion_method()}")
    rate = throughput(cases)
    print(f"throughput (text scorers, lexical grounding, one core): {rate:.0f} candidates/s")


if __name__ == "__main__":
    main()
