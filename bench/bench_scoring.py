"""Pre-scoring throughput on one core as the number of candidates grows.

Synthetic candidates are built in memory from the real demo records (faithful answers and
altered ones: swapped side, changed number, a name, a refusal), five per image as a generation
job with a few templates would make, and 1 in 20 an exact copy of its neighbour so the
near-duplicate lookup has work to do. Each candidate goes through every text scorer plus MinHash
and an LSH lookup against the earlier candidates of its image (the same rule the service uses).
Image scoring is left out: it runs once per image, not per candidate.

    .venv/bin/python bench/bench_scoring.py [--sizes 1000 10000 100000]

With --db, the same candidates are written to a database and scored end to end by
services.candidates_score (scores, MinHash bands and image hashes in their tables, slot
priorities, indexed band lookups). It needs a database of its own whose name contains "bench":

    createdb -h 127.0.0.1 -U postgres bench_medmax_scoring
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_medmax_scoring \
        .venv/bin/python bench/bench_scoring.py --db --sizes 1000 5000 20000

A flat candidates/second (ratio near 1) means the cost per candidate does not grow with the
project: no step compares all pairs.
"""

import argparse
import json
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medmax_review.settings")

import django  # noqa: E402

django.setup()

from medmax_review.core.medmax import IMAGE_BEFORE_INSTRUCTION, IMAGE_CAPTIONING, VQA  # noqa: E402
from medmax_review.scoring.scorers import grounding, near_duplicate  # noqa: E402
from medmax_review.scoring.scorers.base import ScoreInput  # noqa: E402
from medmax_review.scoring.services import (  # noqa: E402
    BATCH_SIZE,
    candidate_scores_compute,
    priority_for,
)

DEMO = ROOT / "demo_data"
CANDIDATES_PER_IMAGE = 5


def demo_rows() -> list[dict]:
    rows = []
    for name in ("vqa_rad.jsonl", "slake.jsonl", "skimage.jsonl"):
        rows += [json.loads(line) for line in (DEMO / name).read_text().splitlines()]
    return rows


def synthetic(count: int, rows: list[dict], seed: int = 7) -> list[tuple[int, ScoreInput]]:
    """(image key, input) pairs; 1 in 20 repeats the previous candidate of the same image."""
    rng = random.Random(seed)
    vocab = sorted({w for r in rows for w in (r.get("caption", "") + r.get("question", "")).split()
                    if w.isalpha()})
    made: list[tuple[int, ScoreInput]] = []
    for i in range(count):
        row = rows[i % len(rows)]
        if i % 20 == 19:  # i % 5 == 4: the previous candidate belongs to the same image
            made.append(made[i - 1])
            continue
        answer = row.get("answer") or row.get("caption", "")[:200]
        filler = " ".join(rng.choices(vocab, k=8))
        variant = i % 5
        if variant == 1:
            answer = answer.replace("Right", "Left").replace("right", "left")
        elif variant == 2:
            answer = f"{answer} measuring {rng.randint(2, 90)} mm"
        elif variant == 3:
            answer = f"{answer}, as Mr. John Smith was told on 03/14/2019"
        elif variant == 4 and i % 10 == 4:
            answer = "I'm sorry, as an AI I cannot interpret medical images."
        task = VQA if "question" in row else IMAGE_CAPTIONING
        item = ScoreInput(
            instruction=row.get("question", "Describe the image."), response=f"{answer}. {filler}",
            task=task, image_position=IMAGE_BEFORE_INSTRUCTION, caption=row.get("caption", ""),
            question=row.get("question", ""), answer=row.get("answer", ""),
            modality=row.get("meta", {}).get("modality", ""), has_image=True,
        )
        made.append((i // CANDIDATES_PER_IMAGE, item))
    return made


def score_all(items: list[tuple[int, ScoreInput]]) -> tuple[float, float, int]:
    """CPU seconds and wall seconds to score every item, and how many were near duplicates.

    Throughput is computed from this process's CPU time: the machine's cores are shared, so wall
    time measures the neighbours as much as the scorers."""
    buckets: dict[int, list[int]] = defaultdict(list)
    signatures: list[list[int]] = []
    flagged = 0
    start, cpu_start = time.perf_counter(), time.process_time()
    for index, (image, item) in enumerate(items):
        if index % BATCH_SIZE == 0:  # as the service does: one model call per batch
            grounding.embeddings_prepare([i for _, i in items[index : index + BATCH_SIZE]])
        scores = candidate_scores_compute(item=item)
        sig = near_duplicate.minhash(f"{item.instruction}\n{item.context}\n{item.response}")
        signatures.append(sig)
        keys = near_duplicate.lsh_bands(sig, scope=image)
        earlier = {other for key in keys for other in buckets[key]}
        matches = [(o, s) for o in earlier
                   if (s := near_duplicate.similarity(sig, signatures[o])) >= near_duplicate.SIMILAR]
        scores[near_duplicate.NAME] = near_duplicate.score_near_duplicate(matches).as_dict()
        priority_for(scores)
        flagged += bool(matches)
        for key in keys:
            buckets[key].append(index)
    return time.process_time() - cpu_start, time.perf_counter() - start, flagged


def score_in_db(items: list[tuple[int, ScoreInput]]) -> tuple[float, float, int]:
    """Write the items as records and candidates of a fresh project, then time candidates_score.

    CPU time here is this process only (Python scoring and the ORM), not the database server's."""
    from django.db import connection

    from medmax_review.projects.models import Project
    from medmax_review.review.candidates import CandidateSpec, candidates_create
    from medmax_review.review.models import Candidate
    from medmax_review.scoring.services import candidates_score, image_fingerprints_ensure
    from medmax_review.sources.images import image_store
    from medmax_review.sources.models import SourceRecord

    if "bench" not in connection.settings_dict["NAME"]:
        raise SystemExit("--db needs a database of its own, with 'bench' in its name")
    Project.objects.filter(slug="bench-scoring").delete()
    project = Project.objects.create(slug="bench-scoring", name="scoring benchmark")
    paths = sorted({r["image"] for r in demo_rows()})
    assets = [image_store(data=(DEMO / p).read_bytes()) for p in paths]
    image_fingerprints_ensure(assets=assets)  # once per image, not part of the per-candidate cost
    records = SourceRecord.objects.bulk_create([
        SourceRecord(project=project, source="bench", external_id=str(key), license="CC0-1.0",
                     image=assets[key % len(assets)], modality=item.modality, caption=item.caption,
                     question=item.question, answer=item.answer)
        for key, item in {key: item for key, item in items}.items()
    ], batch_size=2000)
    record_of = {int(r.external_id): r.id for r in records}
    specs = [
        CandidateSpec(record_id=record_of[key], task=item.task, instruction=item.instruction,
                      response=item.response, image_position=item.image_position,
                      template_ref="bench", sample_index=i % CANDIDATES_PER_IMAGE)
        for i, (key, item) in enumerate(items)
    ]
    for start in range(0, len(specs), 2000):
        candidates_create(project=project, specs=specs[start : start + 2000])
    ids = list(Candidate.objects.filter(project=project).order_by("id").values_list("id", flat=True))
    start, cpu_start = time.perf_counter(), time.process_time()
    candidates_score(candidate_ids=ids)
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - start
    flagged = Candidate.objects.filter(
        project=project, scores__near_duplicate__band__in=["poor", "fail"]).count()
    project.delete()
    return cpu, wall, flagged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--db", action="store_true",
                        help="score end to end through the database (see the module docstring)")
    parser.add_argument("--compare", action="store_true",
                        help="both, on the same candidates in one run: the scorers alone, then "
                             "through the database, and the ratio of their wall-clock speeds")
    parser.add_argument("--embeddings", action="store_true",
                        help="grounding with the sentence-embedding model (when installed)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not args.embeddings:
        grounding._model_state["model"] = None
    rows = demo_rows()
    modes = ["memory", "db"] if args.compare else ["db" if args.db else "memory"]
    grounding_method = "lexical"
    if grounding.embedding_model():
        precision = "bfloat16" if grounding._model_state.get("bf16") else "float32"
        grounding_method = f"embeddings ({precision})"
    print(f"scoring throughput, one process, {' vs '.join(modes)}, grounding {grounding_method},"
          f" {len(rows)} demo records as seeds")
    print(f"{'candidates':>11} {'mode':>7} {'cpu s':>9} {'wall s':>9} {'cand/s/core':>12} "
          f"{'cand/s wall':>12} {'near-dups':>10}")
    if "db" in modes:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
    results = []
    score_all(synthetic(200, rows))  # builds the NLP pipelines once, before anything is timed
    for size in args.sizes:
        items = synthetic(size, rows)
        for mode in modes:
            _caches_clear()
            cpu, wall, flagged = score_in_db(items) if mode == "db" else score_all(items)
            results.append({"size": size, "mode": mode, "cpu_s": cpu, "wall_s": wall,
                            "per_cpu_s": size / cpu, "per_s": size / wall, "near_dups": flagged})
            print(f"{size:>11} {mode:>7} {cpu:>9.2f} {wall:>9.2f} {size / cpu:>12.0f} "
                  f"{size / wall:>12.0f} {flagged:>10}", flush=True)
    for mode in modes:
        rates = [r["per_cpu_s"] for r in results if r["mode"] == mode]
        if len(rates) > 1:
            print(f"{mode}: throughput ratio largest/smallest size {rates[-1] / rates[0]:.2f} "
                  f"(1.00 = cost per candidate independent of project size)")
    if args.compare:
        for size in args.sizes:
            mem, db = (next(r for r in results if r["size"] == size and r["mode"] == m)
                       for m in ("memory", "db"))
            print(f"{size:>11}: through the database at {db['per_s'] / mem['per_s']:.0%} of the "
                  f"scorers' own speed (wall clock; the database server's work included)")
    if args.json:
        args.json.write_text(json.dumps({"grounding": grounding_method, "results": results},
                                        indent=2))


def _caches_clear() -> None:
    """Each measurement starts cold: parsed texts and sentence vectors are cached per process."""
    from medmax_review.scoring.scorers import assertion

    assertion.parse.cache_clear()
    grounding._vectors.clear()


if __name__ == "__main__":
    main()
