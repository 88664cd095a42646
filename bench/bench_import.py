"""Import rows per second through `import_records`, next to the physical limits of the same rows.

For each size, JSON lines of about 50 words a row over PNG images (two rows per image, as in
MedMax: 1.47M records over about 725K images) are imported into a fresh project of a bench
database through the real command: over images of which half are already stored
("mixed") and over images never seen before ("new"). In the same run, on the same file:

- limit "parse+hash+COPY": read every line as JSON, read and SHA-256 each image file once, and
  COPY the rows into a table shaped like the records table;
- limit "+files": that, plus writing the files of the images not stored yet (a temporary file
  renamed into a folder per hash prefix), which the import cannot avoid either;
- limit "COPY": the same COPY of rows already in memory;
- the mixed rows again under other ids ("stored": every image is stored by then), where the
  limit's work is all the import has to do;
- MedMax rows (over the images the mixed case stored) imported with `--format medmax
  --approved`, next to the same limits for what that import writes (a record, a candidate, its
  three revisions and its approval per row);
- files of rejected rows only (the first problems kept, the rest counted), to show their cost
  is linear.

    .venv/bin/python bench/bench_import.py [--sizes 2000 10000 50000] [--bad 20000 80000]
        [--image-side 96] [--db medmax_bench_import_limit] [--json PATH]

`--sizes 100000` (or more) runs the large case; every size gets its own project and images.
Ratios: the import's rows/s over each limit's (1.00 = at the limit), and rows/s at the largest
size over the smallest (flat = no cost that grows with the file).
"""

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import struct
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("BENCH_IMPORT_DIR", "/tmp/medmax_bench_import_limit"))
ROWS_PER_IMAGE = 2
# Columns the limit's COPY writes, the same values the import stores for a plain record.
RECORD_COLUMNS = ("project_id", "source", "external_id", "license", "credential", "modality",
                  "language", "caption", "inline_mention", "question", "answer", "report", "meta",
                  "image_id", "created_at")


def _django(db: str) -> None:
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{db}"
    os.environ["MEDIA_ROOT"] = str(WORK / "media")
    os.environ["DEBUG"] = "False"  # the import keeps its memory flat either way; see the tests
    os.environ.setdefault("SECRET_KEY", "bench-only-not-secret-" + "x" * 40)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medmax_review.settings")
    sys.path.insert(0, str(ROOT))
    import logging

    import django

    django.setup()
    logging.getLogger("medmax_review.sources").setLevel(logging.WARNING)  # one line per import


def _ensure_database(db: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db]).fetchone():
            conn.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')


def _images(folder: Path, count: int, side: int, seed: int) -> list[str]:
    """`count` distinct PNGs of the real VQA-RAD images: each tile encoded once, then a text
    chunk naming the index makes every file's bytes (and hash) its own. The pixels, and so what
    decoding costs, are a real image's; Pillow encoding each file would take longer than the
    imports at 1.47M rows."""
    from PIL import Image

    sources = sorted((ROOT / "demo_data" / "vqa_rad" / "images").glob("*.jpg"))
    tiles = []
    for path in sources:
        with Image.open(path) as im:
            buffer = io.BytesIO()
            im.convert("L").resize((side, side)).save(buffer, format="PNG", compress_level=1)
            png = buffer.getvalue()
            header_end = 8 + 25  # the signature, then IHDR (length, type, 13 bytes, CRC)
            tiles.append((png[:header_end], png[header_end:]))
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        head, rest = tiles[i % len(tiles)]
        text = b"tEXt" + f"bench\0{seed}:{i}".encode()
        chunk = struct.pack(">I", len(text) - 4) + text + struct.pack(">I", zlib.crc32(text))
        name = f"img{seed}-{i:07d}.png"
        (folder / name).write_bytes(head + chunk + rest)
        names.append(name)
    return names


def _words() -> list[str]:
    text = " ".join(json.loads(line)["question"] for line in
                    open(ROOT / "demo_data" / "vqa_rad.jsonl", encoding="utf-8"))
    return [w.strip("?,.").lower() for w in text.split() if w.strip("?,.")]


def _rows(size: int, images: list[str], words: list[str], seed: int) -> list[dict]:
    """About 50 words a row: a 12-word question, a short answer and a 35-word caption."""
    rng = random.Random(seed)
    return [
        {"id": f"s{seed}-{i}", "image": f"images/{images[i // ROWS_PER_IMAGE]}",
         "question": " ".join(rng.choices(words, k=12)) + "?",
         "answer": " ".join(rng.choices(words, k=3)),
         "caption": " ".join(rng.choices(words, k=35)) + ".",
         "source": "vqa_rad", "license": "CC0-1.0", "modality": "MRI"}
        for i in range(size)
    ]


def _write_jsonl(path: Path, rows) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return path


def _medmax(rows: list[dict]) -> list[dict]:
    return [{"text": f"<image>{r['question']}<reserved08706>{r['answer']} {r['caption']}",
             "image_path": r["image"], "task": "VQA", "source": r["source"], "credential": "no",
             "id": r["id"]} for r in rows]


def _bench_tables() -> None:
    """Empty tables shaped like the ones the import writes (indexes and unique constraints
    included, foreign keys not: the limit writes rows only)."""
    from django.db import connection

    with connection.cursor() as cur:
        for name, like in (("bench_record", "sources_sourcerecord"),
                           ("bench_candidate", "review_candidate"),
                           ("bench_revision", "review_revision"),
                           ("bench_decision", "review_decision")):
            cur.execute(f"DROP TABLE IF EXISTS {name}")
            cur.execute(f"CREATE TABLE {name} (LIKE {like} INCLUDING ALL)")


def _copy(table: str, columns, rows) -> None:
    from django.db import connection

    with connection.cursor() as cur, cur.copy(
        f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)


def _record_tuples(path: Path, images_dir: Path, project_id: int, now,
                   known: dict[str, str]) -> list[tuple]:
    """Parse every line and hash each image file once ({path: sha256} into `known`): what any
    importer must do."""
    out = []
    with open(path, "rb") as fh:
        for line in fh:
            data = json.loads(line)
            ref = data.get("image") or data.get("image_path")
            digest = known.get(ref)
            if digest is None:
                digest = known[ref] = hashlib.sha256((images_dir / ref).read_bytes()).hexdigest()
            out.append((project_id, data.get("source", ""), data["id"], data.get("license", ""),
                        "no", data.get("modality", ""), "", data.get("caption", ""), "",
                        data.get("question", data.get("text", "")), data.get("answer", ""), "",
                        json.dumps({"image_sha256": digest}), None, now))
    return out


def _truncate(*tables: str) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")


def _files_write(images_dir: Path, known: dict[str, str]) -> float:
    """Seconds to write the files of the images not stored yet, as any importer must (a
    temporary file renamed into a folder per hash prefix), into a scratch folder."""
    from medmax_review.sources.image_verify import file_write_once, relative_path
    from medmax_review.sources.models import ImageAsset

    stored = set(ImageAsset.objects.filter(sha256__in_array=set(known.values()))
                 .values_list("sha256", flat=True))
    scratch = WORK / "limit-media"
    shutil.rmtree(scratch, ignore_errors=True)
    new = {sha: ref for ref, sha in known.items() if sha not in stored}
    started = time.perf_counter()
    for sha, ref in new.items():
        file_write_once(scratch / relative_path(sha, "png"), (images_dir / ref).read_bytes())
    seconds = time.perf_counter() - started
    shutil.rmtree(scratch, ignore_errors=True)
    return seconds


def _limits(path: Path, images_dir: Path, *, medmax: bool) -> dict:
    """Rows/s of parse+hash+COPY, of that plus writing the new images' files, and of the COPY
    alone (each COPY timed on an emptied table)."""
    from django.db import transaction
    from django.utils import timezone

    now = timezone.now()
    tables = ("bench_record", "bench_candidate", "bench_revision", "bench_decision")

    def write(tuples):
        with transaction.atomic():
            _copy("bench_record", RECORD_COLUMNS, tuples)
            if medmax:
                _candidate_copies(tuples, now)

    _truncate(*tables)
    started = time.perf_counter()
    known: dict[str, str] = {}
    tuples = _record_tuples(path, images_dir, 1, now, known)
    write(tuples)
    full = time.perf_counter() - started
    files = _files_write(images_dir, known)
    _truncate(*tables)
    started = time.perf_counter()
    write(tuples)
    copy_only = time.perf_counter() - started
    return {"parse_hash_copy_rows_per_s": len(tuples) / full,
            "with_files_rows_per_s": len(tuples) / (full + files),
            "copy_rows_per_s": len(tuples) / copy_only}


def _candidate_copies(records: list[tuple], now) -> None:
    """What a MedMax --approved row writes beside its record: a candidate, three revisions
    (instruction, context, response) and the approving decision."""
    candidate_columns = ("project_id", "record_id", "template_ref", "template_version",
                         "sample_index", "task", "instruction", "context", "response",
                         "image_position", "provenance", "raw_output", "generation_error",
                         "prompt_tokens", "completion_tokens", "credential", "status",
                         "version", "created_at", "updated_at", "decided_at", "scores", "priority",
                         "reject_risk_detail", "edited")
    _copy("bench_candidate", candidate_columns, (
        (1, i + 1, "import", 0, 0, "vqa", r[9], "", r[10], "before", '{"import_file": "x"}',
         "", "", 0, 0, False, "approved", 1, now, now, now, "{}", 0.0, "{}", False)
        for i, r in enumerate(records)))
    _copy("bench_revision", ("candidate_id", "field", "text", "candidate_version", "applied",
                             "created_at"), (
        (i + 1, name, text, 1, True, now)
        for i, r in enumerate(records) for name, text in
        (("instruction", r[9]), ("context", ""), ("response", r[10]))))
    _copy("bench_decision", ("candidate_id", "action", "system_note", "candidate_version",
                             "reason", "comment", "instruction", "response", "created_at"), (
        (i + 1, "approve", "imported as approved", 1, "", "", "", "", now)
        for i in range(len(records))))


def _import(path: Path, slug: str, *extra: str) -> tuple[float, str]:
    from django.core.management import call_command

    out = io.StringIO()
    started = time.perf_counter()
    try:
        call_command("import_records", str(path), "--project", slug, *extra, stdout=out,
                     stderr=io.StringIO())
    except Exception as exc:  # a CommandError when every row was rejected (the bad-rows case)
        return time.perf_counter() - started, str(exc)
    return time.perf_counter() - started, out.getvalue().strip().splitlines()[-1]


def _case(name: str, size: int, path: Path, images_dir: Path, slug: str, *extra: str,
          medmax: bool = False) -> dict:
    limits = _limits(path, images_dir, medmax=medmax)
    seconds, summary = _import(path, slug, *extra)
    expected = f"{size} records created"
    if expected not in summary:
        raise SystemExit(f"{name} at {size}: {summary}")
    rate = size / seconds
    result = {"case": name, "rows": size, "seconds": seconds, "rows_per_s": rate, **limits,
              "ratio_parse_hash_copy": rate / limits["parse_hash_copy_rows_per_s"],
              "ratio_with_files": rate / limits["with_files_rows_per_s"],
              "ratio_copy": rate / limits["copy_rows_per_s"]}
    print(f"{name:>15} {size:>9,} {seconds:>8.1f} {rate:>9,.0f} "
          f"{limits['parse_hash_copy_rows_per_s']:>10,.0f} {result['ratio_parse_hash_copy']:>6.2f} "
          f"{limits['with_files_rows_per_s']:>10,.0f} {result['ratio_with_files']:>6.2f} "
          f"{limits['copy_rows_per_s']:>10,.0f} {result['ratio_copy']:>6.2f}", flush=True)
    return result


def _bad(size: int, folder: Path) -> dict:
    """Rows that are all refused (a question without its answer): seconds per 1,000."""
    path = _write_jsonl(folder / f"bad-{size}.jsonl", (
        {"id": f"bad-{i}", "image": "images/none.png", "question": f"q {i}?"}
        for i in range(size)))
    seconds, _ = _import(path, f"bad-{size}")
    print(f"{'rejected rows':>15} {size:>9,} {seconds:>8.1f} {size / seconds:>9,.0f}"
          f"   ({seconds / size * 1000:.3f} s per 1,000 rejected)", flush=True)
    return {"case": "rejected", "rows": size, "seconds": seconds, "rows_per_s": size / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 10_000, 50_000])
    parser.add_argument("--bad", type=int, nargs="*", default=[20_000, 80_000])
    parser.add_argument("--image-side", type=int, default=96, help="pixels of each square PNG")
    parser.add_argument("--db", default="medmax_bench_import_limit")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--skip-new", action="store_true",
                        help="leave out the case over new images, which writes as many image "
                             "files again (at 1.47M rows, 735k more files)")
    args = parser.parse_args()
    _ensure_database(args.db)
    _django(args.db)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    _bench_tables()
    shutil.rmtree(WORK, ignore_errors=True)
    words = _words()
    results = []
    print(f"{'case':>15} {'rows':>9} {'seconds':>8} {'rows/s':>9} "
          f"{'p+h+COPY/s':>10} {'ratio':>6} {'+files/s':>10} {'ratio':>6} {'COPY/s':>10} {'ratio':>6}")
    for seed, size in enumerate(args.sizes, start=1):
        folder = WORK / f"data-{size}"
        count = -(-size // ROWS_PER_IMAGE)
        mixed = _images(folder / "images", count, args.image_side, seed)
        rows = _rows(size, mixed, words, seed)
        # Half the images are stored before the timed import, by another project's rows.
        _import(_write_jsonl(folder / "warm.jsonl", (
            {**r, "id": "warm-" + r["id"]} for r in rows[::ROWS_PER_IMAGE * 2])), f"warm-{size}")
        path = _write_jsonl(folder / "mixed.jsonl", rows)
        results.append(_case("jsonl mixed", size, path, folder, f"mixed-{size}"))
        # The same images again, every one stored now: a second dataset over them (MedMax's
        # tasks share their images), where the limit's work is all the import must do.
        path = _write_jsonl(folder / "stored.jsonl", ({**r, "id": "again-" + r["id"]} for r in rows))
        results.append(_case("jsonl stored", size, path, folder, f"stored-{size}"))
        if not args.skip_new:
            new = _images(folder / "images", count, args.image_side, seed + 1000)
            path = _write_jsonl(folder / "new.jsonl", _rows(size, new, words, seed + 1000))
            results.append(_case("jsonl new", size, path, folder, f"new-{size}"))
        path = _write_jsonl(folder / "medmax.jsonl", _medmax(rows))
        results.append(_case("medmax approved", size, path, folder, f"medmax-{size}",
                             "--format", "medmax", "--approved", medmax=True))
        shutil.rmtree(folder / "images")
    for size in args.bad:
        results.append(_bad(size, WORK))
    if len(args.sizes) > 1:
        small, large = args.sizes[0], args.sizes[-1]
        rate = {(r["case"], r["rows"]): r["rows_per_s"] for r in results}
        print(f"\nrows/s at {large:,} / at {small:,}: " + "  ".join(
            f"{case} {rate[case, large] / rate[case, small]:.2f}"
            for case in ("jsonl mixed", "jsonl stored", "jsonl new", "medmax approved")
            if (case, large) in rate and (case, small) in rate))
    if len(args.bad) > 1:
        bad = [r for r in results if r["case"] == "rejected"]
        print(f"rejected rows: seconds per row at {bad[-1]['rows']:,} / at {bad[0]['rows']:,}: "
              f"{(bad[-1]['seconds'] / bad[-1]['rows']) / (bad[0]['seconds'] / bad[0]['rows']):.2f}"
              " (1.00 = linear)")
    if args.json:
        args.json.write_text(json.dumps({"cpus": os.cpu_count(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
