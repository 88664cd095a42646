"""Export throughput and peak memory as the number of approved candidates grows.

Synthetic approved candidates (one source record each, sharing a few hundred real image files
in the store) are bulk-loaded with COPY into a bench database, one project per size. Each
size is then exported (MedMax JSONL, 0.9/0.05/0.05 split, images hard-linked) in a fresh
subprocess, after one untimed export of the smallest size (a worker's first export also pays
for imports and first queries), which reports rows per second and its peak resident memory
(getrusage maxrss).

The same subprocess measures the limit the export is held against: a raw server-side cursor
over the same join (candidate, record, image; the same columns) with each row serialised by
orjson into a file, and nothing else. It runs before and after the export; the faster run is
the limit, and the table gives the export's share of it.

    .venv/bin/python bench/bench_export.py [--sizes 10000 100000 1470000] [--db medmax_bench_export]

Loaded projects are kept, so a second run only exports. A flat rows/second and a peak memory
that stays a small constant above the smallest size mean nothing in the export grows with the
number of rows.
"""

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("BENCH_EXPORT_DIR", "/tmp/medmax_bench_export"))
IMAGES = 300
TASKS = [
    ("vqa", "before_instruction"),
    ("image_captioning", "before_instruction"),
    ("image_generation", "in_response"),
]
SOURCES = ["pmc_oa", "quilt", "vqa_rad", "mimic_cxr"]
LICENSES = ["CC0-1.0", "CC-BY-4.0", "CC-BY-NC-4.0"]


def _django(db: str) -> None:
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{db}"
    os.environ["MEDIA_ROOT"] = str(WORK / "media")
    os.environ.pop("TEST_DATABASE_NAME", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medmax_review.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _ensure_database(db: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db]).fetchone():
            conn.execute(f'CREATE DATABASE "{db}"')


def _copy(cursor, model, rows, fixed: dict) -> None:
    """COPY rows (dicts) into the model's table; other columns take the model's defaults."""
    from django.db.models.fields.json import JSONField
    from psycopg.types.json import Jsonb

    now = dt.datetime.now(dt.UTC)
    fields = [f for f in model._meta.concrete_fields]
    columns = [f.column for f in fields]

    def default(f):
        if f.column in fixed:
            return fixed[f.column]
        if isinstance(f, JSONField):
            return Jsonb(f.get_default())
        if f.get_internal_type() == "DateTimeField" and not f.null:
            return now
        return f.get_default()

    base = {f.column: default(f) for f in fields}
    json_columns = {f.column for f in fields if isinstance(f, JSONField)}
    sql = f'COPY "{model._meta.db_table}" ({", ".join(columns)}) FROM STDIN'
    with cursor.copy(sql) as copy:
        for row in rows:
            values = {**base, **row}
            for column in json_columns & row.keys():
                values[column] = Jsonb(row[column])
            copy.write_row([values[c] for c in columns])


def _images() -> list[int]:
    """A few hundred real PNG files in the store, each a distinct image."""
    import io

    from django.conf import settings
    from PIL import Image

    from medmax_review.sources.models import ImageAsset

    # Always rebuilt (cheap and deterministic), so a cleared media folder is filled again.
    folder = Path(settings.MEDIA_ROOT) / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(IMAGES):
        buffer = io.BytesIO()
        image = Image.new("L", (32, 32), color=i % 256)
        image.putpixel((i % 32, (i // 32) % 32), 255 - i % 256)
        image.save(buffer, format="PNG")
        data = buffer.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        if not (folder / f"{sha}.png").exists():
            (folder / f"{sha}.png").write_bytes(data)
        ImageAsset.objects.get_or_create(sha256=sha, defaults={
            "file": f"bench/{sha}.png", "format": "png", "width": 32, "height": 32,
            "size_bytes": len(data),
        })
    return list(
        ImageAsset.objects.filter(file__startswith="bench/").order_by("id").values_list("id", flat=True)
    )


def _load(size: int, images: list[int]) -> str:
    """The project bench-<size> with `size` approved candidates (loaded once, then kept)."""
    from django.db import connection, transaction

    from medmax_review.projects.models import Project
    from medmax_review.review.models import Candidate
    from medmax_review.sources.models import SourceRecord

    slug = f"bench-{size}"
    project, _ = Project.objects.get_or_create(slug=slug, defaults={"name": slug})
    have = Candidate.objects.filter(project=project, status="approved").count()
    if have == size:
        return slug
    if have:
        raise SystemExit(f"{slug} holds {have} candidates, not {size}: drop the bench database")
    started = time.perf_counter()
    decided = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with transaction.atomic(), connection.cursor() as cursor:
        raw = cursor.connection.cursor()
        start = (SourceRecord.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
        records = (
            {
                "id": start + i, "source": SOURCES[i % 4], "external_id": str(i),
                "license": LICENSES[i % 3], "credential": "yes" if i % 4 == 3 else "no",
                "image_id": images[i % len(images)],
                "question": f"What does panel {i % 7} show in this {SOURCES[i % 4]} figure?",
                "answer": f"It shows finding number {i} in the {'left' if i % 2 else 'right'} lobe.",
            }
            for i in range(size)
        )
        _copy(raw, SourceRecord, records, {"project_id": project.pk})
        cstart = (Candidate.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1

        def candidates():
            for i in range(size):
                task, position = TASKS[i % 3]
                generation = task == "image_generation"
                yield {
                    "id": cstart + i, "record_id": start + i, "task": task,
                    "instruction": (f"Draw the figure described: finding {i} in a lobe."
                                    if generation else
                                    f"What does panel {i % 7} show in this figure? Be brief."),
                    "response": "" if generation else
                    f"It shows finding number {i} in the {'left' if i % 2 else 'right'} lobe, "
                    "with no other abnormality.",
                    "image_position": position, "credential": i % 4 == 3,
                    "template_ref": f"{task}/default@v3", "template_version": 3,
                    "provenance": {"backend": "template", "model": "SmolLM2-135M-Instruct"},
                    "decided_at": decided + dt.timedelta(seconds=i),
                }

        _copy(raw, Candidate, candidates(), {
            "project_id": project.pk, "status": "approved", "version": 1, "job_id": None,
            "template_id": None, "decided_at": None,
        })
        for table in ("sources_sourcerecord", "review_candidate"):
            raw.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sources_sourcerecord; ANALYZE review_candidate")
    print(f"loaded {size:>9,} approved candidates in {time.perf_counter() - started:6.1f} s",
          flush=True)
    return slug


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# The export's join, read raw: every column the export reads of a candidate, its record and
# its image, in the export's order.
RAW_JOIN = """
    SELECT c.id, c.record_id, c.task, c.instruction, c.context, c.response, c.image_position,
           c.template_ref, c.template_version, c.provenance ->> 'model', c.edited,
           c.provenance ->> 'task_name', c.provenance ->> 'image_path',
           c.provenance ? 'image_path', r.source, r.license, r.credential, i.sha256, i.format,
           i.file, r.meta ->> 'source_citation'
    FROM review_candidate c
    JOIN sources_sourcerecord r ON r.id = c.record_id
    LEFT JOIN sources_imageasset i ON i.id = r.image_id
    WHERE c.project_id = %s AND c.status = 'approved'
    ORDER BY c.id
"""


def _raw_stream(project_id: int, target: Path) -> float:
    """Rows per second of the raw limit: one named cursor, orjson, a file."""
    import orjson
    import psycopg
    from django.conf import settings

    database = settings.DATABASES["default"]
    url = f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    started = time.perf_counter()
    rows = 0
    with psycopg.connect(url) as conn, conn.transaction(), \
            conn.cursor(name="raw_export") as cursor, open(target, "wb") as out:
        cursor.itersize = settings.EXPORT_BATCH_SIZE
        cursor.execute(RAW_JOIN, [project_id])
        for row in cursor:
            out.write(orjson.dumps(row) + b"\n")
            rows += 1
    seconds = time.perf_counter() - started
    target.unlink()
    return rows / seconds


def _export(project, out: Path):
    from medmax_review.exports import services

    shutil.rmtree(out, ignore_errors=True)
    version = services.dataset_version_create(
        project=project, options={"split": "0.9,0.05,0.05", "images": "copy"}, out_dir=out
    )
    return services.dataset_version_build(version_id=version.pk)


def _measure(slug: str, warm: str) -> None:
    """Child process: the raw limit, the export, the raw limit again; one JSON line with the
    speeds and the export's peak memory. An export of the `warm` project goes first, untimed:
    a worker runs export after export, and only its first pays for imports and first queries."""
    from django.db import connection

    from medmax_review.exports import services
    from medmax_review.projects.models import Project

    project = Project.objects.get(slug=slug)
    connection.ensure_connection()
    (WORK / "out").mkdir(parents=True, exist_ok=True)
    _export(Project.objects.get(slug=warm), WORK / "out" / "warm")
    shutil.rmtree(WORK / "out" / "warm", ignore_errors=True)
    raw_before = _raw_stream(project.pk, WORK / "out" / f"{slug}.raw.jsonl")
    before = _rss_kb()  # resident size now, ready to export: the floor the peak is read against
    out = WORK / "out" / slug
    started = time.perf_counter()
    version = _export(project, out)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    folder = services.dataset_version_folder(version)
    size = sum(p.stat().st_size for p in folder.glob("*.jsonl"))
    shutil.rmtree(out, ignore_errors=True)  # the files are large and only the figures matter
    raw_after = _raw_stream(project.pk, WORK / "out" / f"{slug}.raw.jsonl")
    print(json.dumps({
        "status": version.status, "error": version.error, "rows": version.manifest.get("rows"),
        "seconds": seconds, "rss_before_kb": before, "maxrss_peak_kb": peak,
        "jsonl_bytes": size, "raw_rows_per_second": max(raw_before, raw_after),
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_470_000])
    parser.add_argument("--db", default="medmax_bench_export")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--warm", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.measure:
        _django(args.db)
        _measure(args.measure, args.warm)
        return
    _ensure_database(args.db)
    _django(args.db)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    images = _images()
    slugs = [_load(size, images) for size in args.sizes]
    print(f"{'rows':>10} {'seconds':>8} {'rows/s':>9} {'raw rows/s':>11} {'share':>6}"
          f" {'maxrss MB':>10} {'above ready MB':>15} {'jsonl MB':>9}")
    first_peak = None
    results = []
    for slug in slugs:
        child = subprocess.run(
            [sys.executable, __file__, "--db", args.db, "--measure", slug, "--warm", slugs[0]],
            capture_output=True, text=True, check=True,
        )
        result = json.loads(child.stdout.strip().splitlines()[-1])
        if result["status"] != "done":
            raise SystemExit(f"export of {slug} failed: {result['error']}")
        peak = result["maxrss_peak_kb"] / 1024
        first_peak = first_peak or peak
        speed, limit = result["rows"] / result["seconds"], result["raw_rows_per_second"]
        results.append({**result, "rows_per_second": speed, "share": speed / limit})
        print(f"{result['rows']:>10,} {result['seconds']:>8.1f} {speed:>9,.0f} {limit:>11,.0f}"
              f" {speed / limit:>6.2f} {peak:>10.1f} "
              f"{peak - result['rss_before_kb'] / 1024:>15.1f} "
              f"{result['jsonl_bytes'] / 2**20:>9.1f}", flush=True)
    print(f"peak memory of the largest export / smallest: {peak / first_peak:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"results": results}, indent=2))


if __name__ == "__main__":
    main()
