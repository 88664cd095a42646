"""Every benchmark in one run, at MedMax sizes, written to BENCHMARKS.md and a JSON file.

Each benchmark runs in its own process (one after another: the machine's cores are shared and a
figure is only comparable with its limit measured in the same run) and writes its figures as
JSON; this script puts them side by side with the machine and the date.

    .venv/bin/python bench/run_all.py                       # 10k, 100k and 1.47M records
    .venv/bin/python bench/run_all.py --sizes 2000 10000    # a quick look
    .venv/bin/python bench/run_all.py --only pages export   # some of them
    .venv/bin/python bench/run_all.py --render              # the markdown again, from the JSON

PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379 are needed; every benchmark uses a
database of its own, never the app's.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
MEDMAX = 1_470_000
# Benchmarks that take their database from DATABASE_URL get one of their own.
DATABASES = {"scoring": "medmax_bench_scoring", "scoring_embeddings": "medmax_bench_scoring"}
SERVER = "postgres://postgres@127.0.0.1:5432"


def _steps(sizes: list[int], import_sizes: list[int] | None = None) -> dict[str, list[str]]:
    """Each benchmark's command line for these sizes."""
    # The import runs at every size too (about half an hour at 1.47M on two cores);
    # --import-sizes 10000 100000 leaves the largest out.
    import_sizes = [str(s) for s in (import_sizes or sizes)]
    return {
        "import": ["bench_import.py", "--sizes", *import_sizes],
        "export": ["bench_export.py", "--sizes", *map(str, sizes)],
        # Scoring cost per candidate does not depend on the project's size (bench_scoring shows
        # it flat); a bounded size keeps the run under an hour.
        "scoring": ["bench_scoring.py", "--compare", "--sizes", "2000", "10000"],
        "scoring_embeddings": ["bench_scoring.py", "--compare", "--embeddings", "--sizes", "2000"],
        "generation": ["bench_generation.py", "--sizes", "64", "256", "1024"],
        "pages": ["bench_pages.py", "--sizes", *map(str, sizes), "--reviewers", "1", "10", "50"],
    }


def machine() -> dict:
    load = os.getloadavg()
    memory = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(int(memory) / 2**20, 1),
            "python": platform.python_version(), "load_average_at_start": [round(x, 2) for x in load],
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


def _database_ensure(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def run(name: str, argv: list[str]) -> dict:
    out = RESULTS / f"{name}.json"
    log = RESULTS / f"{name}.log"
    started = time.perf_counter()
    env = dict(os.environ)
    if name in DATABASES:
        _database_ensure(DATABASES[name])
        env["DATABASE_URL"] = f"{SERVER}/{DATABASES[name]}"
    with log.open("w") as handle:
        code = subprocess.run([sys.executable, str(ROOT / "bench" / argv[0]), *argv[1:],
                               "--json", str(out)], cwd=ROOT, stdout=handle, env=env,
                              stderr=subprocess.STDOUT).returncode
    result = {"command": " ".join(["bench/" + argv[0], *argv[1:]]), "exit": code,
              "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
              "seconds": round(time.perf_counter() - started, 1), "log": log.name}
    if code == 0 and out.exists():
        result["figures"] = json.loads(out.read_text())
    else:
        result["tail"] = log.read_text().splitlines()[-15:]
    print(f"{name}: exit {code} after {result['seconds']:.0f} s", flush=True)
    return result


# --- BENCHMARKS.md ---------------------------------------------------------------------------

def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def _import_md(f: dict) -> list[str]:
    lines = ["| case | rows | rows/s | limit: parse+hash+COPY rows/s | share "
             "| limit: + new image files rows/s | share | limit: COPY rows/s | share |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in f.get("results", []):
        if "parse_hash_copy_rows_per_s" in r:
            lines.append(f"| {r['case']} | {r['rows']:,} | {r['rows_per_s']:,.0f} | "
                         f"{r['parse_hash_copy_rows_per_s']:,.0f} | {r['ratio_parse_hash_copy']:.2f} "
                         f"| {r['with_files_rows_per_s']:,.0f} | {r['ratio_with_files']:.2f} "
                         f"| {r['copy_rows_per_s']:,.0f} | {r['ratio_copy']:.2f} |")
        else:
            lines.append(f"| {r['case']} | {r['rows']:,} | {r['rows_per_s']:,.0f} | | | | | | |")
    return lines


def _export_md(f: dict) -> list[str]:
    lines = ["| rows | seconds | rows/s | limit: raw cursor + orjson rows/s | share | peak RSS MB |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in f.get("results", []):
        lines.append(f"| {r['rows']:,} | {r['seconds']:.1f} | {r['rows_per_second']:,.0f} | "
                     f"{r['raw_rows_per_second']:,.0f} | {r['share']:.2f} | "
                     f"{r['maxrss_peak_kb'] / 1024:.0f} |")
    return lines


def _scoring_md(f: dict) -> list[str]:
    lines = [f"Grounding: {f.get('grounding')}.", "",
             "| candidates | mode | cand/s (wall) | cand/s per CPU-second |",
             "| ---: | --- | ---: | ---: |"]
    results = f.get("results", [])
    for r in results:
        lines.append(f"| {r['size']:,} | {r['mode']} | {r['per_s']:,.0f} | {r['per_cpu_s']:,.0f} |")
    for size in sorted({r["size"] for r in results}):
        mem = next((r for r in results if r["size"] == size and r["mode"] == "memory"), None)
        db = next((r for r in results if r["size"] == size and r["mode"] == "db"), None)
        if mem and db:
            lines.append("")
            lines.append(f"At {size:,}: through the database at {db['per_s'] / mem['per_s']:.0%} "
                         f"of the scorers' own speed (the limit, measured in the same run).")
    return lines


def _generation_md(f: dict) -> list[str]:
    lines = [f"Stub latency {f.get('latency_s', 0) * 1000:.0f} ms, {f.get('concurrency')} requests in "
             f"flight per worker, chunks of {f.get('chunk_size')} records; ideal = records x "
             "latency / requests in flight.", "",
             "| workers | records | chunks | ideal s | wall s | wall / ideal | peak in flight |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in f.get("runs", []):
        lines.append(f"| {r['workers']} | {r.get('records', '')} | {r.get('chunks', '')} | "
                     f"{r['ideal_s']:.2f} | {r['wall_s']:.2f} | {r['ratio']:.2f} | "
                     f"{r.get('peak_in_flight', '')} |")
    return lines


def _pages_md(f: dict) -> list[str]:
    pages = ("next", "review", "decision", "browser", "dashboard", "stats", "static")
    results = f.get("results", [])
    lines = [f"gunicorn {f.get('workers')} workers x {f.get('threads')} threads; client-side "
             "latency in ms (p50 / p95); `static` (a CSS file through the same server under the "
             "same load) is the limit: an HTTP round trip with nothing of the app in it.", "",
             "| candidates | reviewers | " + " | ".join(pages) + " |",
             "| ---: | ---: | " + " | ".join("---:" for _ in pages) + " |"]
    for r in results:
        lines.append(f"| {r['size']:,} | {r['reviewers']} | " + " | ".join(
            f"{r[p]['p50']:.0f} / {r[p]['p95']:.0f}" for p in pages) + " |")
    failed = [r for r in results if r.get("failed")]
    if failed:
        lines.append("")
        lines += [f"At {r['size']:,} with {r['reviewers']} reviewers, {r['failed']} client(s) "
                  f"stopped on a failed request: `{r['errors'][0]}` (a client gives up after "
                  "60 s; its figures before that count)." for r in failed]
    sizes = sorted({r["size"] for r in results})
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        lines += ["", f"p50 at {large:,} / p50 at {small:,} (the aim: within 1.5x):", "",
                  "| reviewers | " + " | ".join(pages) + " |",
                  "| ---: | " + " | ".join("---:" for _ in pages) + " |"]
        for count in sorted({r["reviewers"] for r in results}):
            a = next(r for r in results if r["size"] == small and r["reviewers"] == count)
            b = next(r for r in results if r["size"] == large and r["reviewers"] == count)
            lines.append(f"| {count} | " + " | ".join(
                _ratio(b[p]["p50"], a[p]["p50"]) + "x" for p in pages) + " |")
    plans = f.get("plans", [])
    if plans:
        scans = [q for q in plans if q["seq_scans"]]
        lines += ["", f"Query plans at {sizes[-1]:,}: {len(plans)} queries of one reviewer's pages, "
                  f"{len(scans)} with a sequential scan:", ""]
        for q in scans:
            # Runs before EXPLAIN ANALYZE recorded what each scan read give the node alone.
            lines += [f"- {q['page']}: `{scan['node']}` read {scan['rows_read']:,} rows"
                      + (", stopped by a LIMIT" if scan["under_limit"] else "")
                      for scan in q.get("scans", [])] or [f"- {q['page']}: `{q['seq_scans'][0]}`"]
    return lines


SECTIONS = {
    "import": ("Import (`import_records`, JSONL with images)", _import_md),
    "export": ("Export (MedMax JSONL, split, images linked)", _export_md),
    "scoring": ("Scoring through the database vs the scorers alone", _scoring_md),
    "scoring_embeddings": ("Scoring with the embeddings extra", _scoring_md),
    "generation": ("Generation against a 200 ms stub, 8 requests in flight", _generation_md),
    "pages": ("Pages over HTTP under gunicorn, 1, 10 and 50 reviewers", _pages_md),
}


def markdown(report: dict) -> str:
    m = report["machine"]
    out = ["# Benchmarks", "",
           f"One run of `bench/run_all.py` on {m['date']}: {m['cpus']} CPUs ({m['cpu']}), "
           f"{m['memory_gib']} GiB, Python {m['python']}, load average {m['load_average_at_start']} "
           f"at the start; sizes {', '.join(f'{s:,}' for s in report['sizes'])}. Every figure stands "
           "next to its limit measured in the same run; the raw figures are in "
           "`bench/results/benchmarks.json`, each benchmark's output in `bench/results/*.log`."
           + (" Sections run again later (`--only`) give their own date and machine." if any(
               "machine" in r for r in report["steps"].values()) else ""), ""]
    for name in [n for n in SECTIONS if n in report["steps"]]:
        result = report["steps"][name]
        title, render = SECTIONS[name]
        ran_on = result.get("machine")
        where = (f"; {ran_on['cpus']} CPUs ({ran_on['cpu']}), load average "
                 f"{ran_on['load_average_at_start']} at the start of that run" if ran_on else "")
        out += [f"## {title}", "", f"`{result['command']}` ({result['seconds']:.0f} s, "
                f"{result.get('date', m['date'])}{where})", ""]
        if "figures" not in result:
            out += [f"Failed (exit {result['exit']}):", "", "```", *result.get("tail", []), "```"]
        else:
            if result["exit"] != 0:
                out += [f"The benchmark exited with {result['exit']}; these figures were read "
                        f"{result['figures'].get('transcribed', 'from its output')}.", ""]
            out += render(result["figures"])
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, MEDMAX])
    parser.add_argument("--import-sizes", type=int, nargs="+", help="default: --sizes")
    parser.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run only these")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--render", action="store_true",
                        help="run nothing: write the markdown again from the last JSON")
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    if args.render:
        args.out.write_text(markdown(json.loads((RESULTS / "benchmarks.json").read_text())))
        print(f"wrote {args.out}")
        return
    report = {"machine": machine(), "sizes": args.sizes, "steps": {}}
    earlier = RESULTS / "benchmarks.json"
    if args.only and earlier.exists():  # run again only these; keep the others' figures
        report = {**json.loads(earlier.read_text()), "rerun": machine()}
    for name, argv in _steps(args.sizes, args.import_sizes).items():
        if args.only and name not in args.only:
            continue
        report["steps"][name] = run(name, argv)
        if "rerun" in report:
            report["steps"][name]["machine"] = report["rerun"]
        (RESULTS / "benchmarks.json").write_text(json.dumps(report, indent=2, default=str))
        args.out.write_text(markdown(report))
    print(f"wrote {args.out} and {RESULTS / 'benchmarks.json'}")


if __name__ == "__main__":
    main()
