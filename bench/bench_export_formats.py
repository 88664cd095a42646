"""Export throughput and peak memory of each format as the number of approved candidates grows.

The same synthetic projects as bench_export.py (loaded once into its bench database and kept),
exported in every format (0.9/0.05/0.05 split, images copied, or inside the files for Parquet),
each size and format in a fresh subprocess that reports rows per second and its peak resident
memory. A peak that stays flat from the smallest size to the largest means the writer holds
nothing that grows with the rows (LLaVA's JSON array and Parquet's row groups included).

    .venv/bin/python bench/bench_export_formats.py [--sizes 10000 100000] [--formats ...]
"""

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time

import bench_export

FORMATS = ["medmax", "chat", "sharegpt", "llava", "parquet"]


def _measure(slug: str, fmt: str) -> None:
    """Child process: export one project in one format, print one JSON line."""
    from django.db import connection

    from medmax_review.exports import services
    from medmax_review.projects.models import Project

    project = Project.objects.get(slug=slug)
    connection.ensure_connection()
    out = bench_export.WORK / "out" / f"{slug}-{fmt}"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    version = services.dataset_version_create(
        project=project, options={"split": "0.9,0.05,0.05", "images": "copy", "format": fmt},
        out_dir=out,
    )
    version = services.dataset_version_build(version_id=version.pk)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    data = sum(
        entry["size"] for name, entry in version.manifest.get("files", {}).items()
        if not name.startswith("images/")
    )
    shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({"status": version.status, "error": version.error,
                      "rows": version.manifest.get("rows"), "seconds": seconds,
                      "maxrss_peak_kb": peak, "data_bytes": data}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--formats", nargs="+", default=FORMATS, choices=FORMATS)
    parser.add_argument("--db", default="medmax_bench_export")
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        bench_export._django(args.db)
        _measure(*args.measure)
        return
    bench_export._ensure_database(args.db)
    bench_export._django(args.db)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    images = bench_export._images()
    slugs = [bench_export._load(size, images) for size in args.sizes]
    print(f"{'format':>9} {'rows':>9} {'seconds':>8} {'rows/s':>8} {'maxrss MB':>10}"
          f" {'data MB':>8}")
    for fmt in args.formats:
        peaks = []
        for slug in slugs:
            child = subprocess.run(
                [sys.executable, __file__, "--db", args.db, "--measure", slug, fmt],
                capture_output=True, text=True, check=True,
            )
            result = json.loads(child.stdout.strip().splitlines()[-1])
            if result["status"] != "done":
                raise SystemExit(f"{fmt} export of {slug} failed: {result['error']}")
            peaks.append(result["maxrss_peak_kb"] / 1024)
            print(f"{fmt:>9} {result['rows']:>9,} {result['seconds']:>8.1f} "
                  f"{result['rows'] / result['seconds']:>8,.0f} {peaks[-1]:>10.1f} "
                  f"{result['data_bytes'] / 2**20:>8.1f}", flush=True)
        print(f"{fmt:>9} peak memory, largest / smallest export: {peaks[-1] / peaks[0]:.2f}")


if __name__ == "__main__":
    main()
