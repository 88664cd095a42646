"""Import rows per second for each reader, next to the JSONL reader, in one run.

The same rows (real VQA-RAD questions and answers, cycled, each with its own id, over a pool
of small real-derived images) are written as JSON lines, a JSON array, LLaVA conversations and
a Hugging Face Parquet file with the images embedded; each is imported into a fresh project of
a bench database with `records_import`, sizes growing so the cost curve shows.

    .venv/bin/python bench/bench_import_formats.py [--sizes 10000 100000] [--db medmax_bench_import]

Per-row cost is reported as a ratio to JSONL at the same size (1.00 = as fast; below 1 =
slower) and between sizes for each format (flat = no cost that grows with the file).
"""

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("BENCH_IMPORT_DIR", "/tmp/medmax_bench_import"))
POOL = 300  # distinct images, as a dataset reuses an image for several questions
FORMATS = ("jsonl", "json", "parquet", "medmax", "llava")
# MedMax and LLaVA rows carry a response, so each also creates a candidate (with its first
# revision and review slot): they are compared with each other as well as with plain JSONL.


def _django(db: str) -> None:
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{db}"
    os.environ["MEDIA_ROOT"] = str(WORK / "media")
    os.environ["DEBUG"] = "False"  # with DEBUG on Django keeps every query's SQL
    os.environ.setdefault("SECRET_KEY", "bench-only-not-secret-" + "x" * 40)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medmax_review.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _ensure_database(db: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db]).fetchone():
            conn.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')


def _pool(folder: Path) -> list[str]:
    """POOL small PNGs cut from the real VQA-RAD images (distinct bytes each)."""
    from PIL import Image

    sources = sorted((ROOT / "demo_data" / "vqa_rad" / "images").glob("*.jpg"))
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(POOL):
        with Image.open(sources[i % len(sources)]) as im:
            tile = im.convert("L").resize((64, 64)).rotate(i // len(sources) * 7)
        name = f"img{i:04d}.png"
        tile.save(folder / name, format="PNG")
        names.append(name)
    return names


def _rows(size: int, images: list[str]) -> list[dict]:
    qa = [json.loads(line) for line in open(ROOT / "demo_data" / "vqa_rad.jsonl", encoding="utf-8")]
    return [
        {"id": f"r{i}", "image": f"images/{images[i % len(images)]}",
         "question": qa[i % len(qa)]["question"], "answer": qa[i % len(qa)]["answer"],
         "source": "vqa_rad", "license": "CC0-1.0"}
        for i in range(size)
    ]


def _write(fmt: str, rows: list[dict], folder: Path) -> Path:
    if fmt == "jsonl":
        path = folder / "rows.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")
    elif fmt == "json":
        path = folder / "rows.json"
        path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    elif fmt == "medmax":
        path = folder / "medmax.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({
                    "text": f"<image>{r['question']}<reserved08706>{r['answer']}",
                    "image_path": r["image"], "task": "VQA", "source": r["source"],
                    "credential": "no", "id": r["id"]}) + "\n")
    elif fmt == "llava":
        path = folder / "llava.json"
        items = [{"id": r["id"], "image": r["image"], "conversations": [
            {"from": "human", "value": "<image>\n" + r["question"]},
            {"from": "gpt", "value": r["answer"]}]} for r in rows]
        path.write_text(json.dumps(items), encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = folder / "train-00000-of-00001.parquet"
        cache: dict[str, bytes] = {}
        image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
        schema = pa.schema(
            [("image", image_type), ("question", pa.string()), ("answer", pa.string()),
             ("id", pa.string())],
            metadata={"huggingface": json.dumps({"info": {"features": {
                "image": {"_type": "Image"}, "question": {"dtype": "string", "_type": "Value"},
                "answer": {"dtype": "string", "_type": "Value"},
                "id": {"dtype": "string", "_type": "Value"}}}})},
        )
        with pq.ParquetWriter(path, schema) as writer:
            for start in range(0, len(rows), 10_000):
                chunk = rows[start:start + 10_000]
                images = []
                for r in chunk:
                    if r["image"] not in cache:
                        cache[r["image"]] = (folder / r["image"]).read_bytes()
                    images.append({"bytes": cache[r["image"]], "path": Path(r["image"]).name})
                writer.write_table(pa.table({
                    "image": pa.array(images, type=image_type),
                    "question": [r["question"] for r in chunk],
                    "answer": [r["answer"] for r in chunk], "id": [r["id"] for r in chunk],
                }, schema=schema))
    return path


def _read_only(path: Path) -> float:
    """Seconds to read and validate every row, without images or the database."""
    from medmax_review.sources.readers import formats

    started = time.perf_counter()
    reader = formats.reader_for(path, path.name, "auto")
    for row in reader.read(path, path.name):
        assert not row.errors, row.errors
    return time.perf_counter() - started


def _measure(fmt: str, size: int, path: Path, slug: str = "") -> dict:
    from medmax_review.projects.services import project_get_or_create
    from medmax_review.sources.services import records_import

    read_seconds = _read_only(path)
    project, _ = project_get_or_create(slug=slug or f"{fmt}-{size}")
    started = time.perf_counter()
    report = records_import(project=project, path=path)
    seconds = time.perf_counter() - started
    if report.problems or report.created != size:
        raise SystemExit(f"{fmt} at {size}: {report.summary()}; first: {report.errors[:3]}")
    return {"format": fmt, "rows": size, "seconds": seconds, "rows_per_s": size / seconds,
            "read_rows_per_s": size / read_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--db", default="medmax_bench_import")
    args = parser.parse_args()
    _ensure_database(args.db)
    _django(args.db)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    shutil.rmtree(WORK, ignore_errors=True)
    results = {}
    for size in args.sizes:
        folder = WORK / f"data-{size}"
        images = _pool(folder / "images")
        rows = _rows(size, images)
        # Warm-up: the pool's images are stored once, so no format pays for writing them.
        _measure("jsonl", POOL, _write("jsonl", rows[:POOL], folder), slug=f"warm-{size}")
        for fmt in FORMATS:
            path = _write(fmt, rows, folder)
            results[fmt, size] = _measure(fmt, size, path)
            r = results[fmt, size]
            print(f"{fmt:>8} {size:>9,} rows  import {r['seconds']:>7.1f} s {r['rows_per_s']:>8,.0f}"
                  f" rows/s   reader alone {r['read_rows_per_s']:>9,.0f} rows/s", flush=True)
            path.unlink()
    for key, title in (("rows_per_s", "import"), ("read_rows_per_s", "reader alone")):
        print(f"\n{title}: rows/s relative to JSONL at the same size (1.00 = as fast):")
        for size in args.sizes:
            base = results["jsonl", size][key]
            print(f"  {size:>9,}: " + "  ".join(
                f"{fmt} {results[fmt, size][key] / base:.2f}" for fmt in FORMATS))
    print("\nimport with candidates: llava rows/s relative to medmax rows/s: " + "  ".join(
        f"{size:,} {results['llava', size]['rows_per_s'] / results['medmax', size]['rows_per_s']:.2f}"
        for size in args.sizes))
    if len(args.sizes) > 1:
        small, large = args.sizes[0], args.sizes[-1]
        print(f"\nrows/s at {large:,} / at {small:,}: " + "  ".join(
            f"{fmt} {results[fmt, large]['rows_per_s'] / results[fmt, small]['rows_per_s']:.2f}"
            for fmt in FORMATS))
    (WORK / "results.json").write_text(json.dumps(
        [dict(v) for v in results.values()], indent=1))


if __name__ == "__main__":
    main()
