"""Generation wall time against a loopback OpenAI-compatible stub with a fixed latency, run by
real Celery workers, next to the ideal: records x latency / requests in flight.

Each size is one job launched the way the web page launches it (job_create: its chunks are
sent to the `generation` queue once it commits), timed from job_create (its records already
stored) until the job is done, first with one worker process and then with two sharing it.
The stub counts the requests it has open at once (the tests' stub server), so the table also
shows that two workers keep the job's total within its limit.
Scoring messages wait on the `scoring` queue, which no worker here consumes: this measures
generation alone.

Needs PostgreSQL and Redis on 127.0.0.1 (its own database and Redis db, both emptied):

    .venv/bin/python bench/bench_generation.py [--latency 0.2] [--sizes 64 256 1024]
        [--concurrency 8] [--workers 1 2] [--json PATH]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PORTS = range(8130, 8140)
DATABASE = "medmax_bench_generation"
BROKER = "redis://127.0.0.1:6379/12"


def _ensure_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


def _workers(count: int, env: dict, logs: Path) -> list[subprocess.Popen]:
    """`count` Celery worker processes on the generation queue, each one request pipeline."""
    processes = []
    for n in range(count):
        log = logs / f"worker{count}-{n}.log"
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "medmax_review", "worker", "-P", "solo",
             "-Q", "generation", "--hostname", f"bench{n}@%h", "--without-mingle",
             "--without-gossip", "-l", "INFO"],
            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT))
    deadline = time.monotonic() + 60
    for n in range(count):
        log = logs / f"worker{count}-{n}.log"
        while b"ready." not in log.read_bytes():
            if time.monotonic() > deadline or processes[n].poll() is not None:
                raise SystemExit(f"worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
    return processes


def _records(size: int, tag: str):
    from medmax_review.projects.services import project_get_or_create
    from medmax_review.sources.models import ImageAsset, SourceRecord

    project, _ = project_get_or_create(slug=f"bench-{tag}", name=f"bench {tag}")
    images = ImageAsset.objects.bulk_create([
        ImageAsset(sha256=f"{tag:>16}{i:048d}".replace(" ", "0"), file=f"bench/{tag}/{i}.png",
                   format="png", width=1, height=1, size_bytes=1) for i in range(size)])
    SourceRecord.objects.bulk_create([
        SourceRecord(project=project, source="bench", external_id=str(i), image=image,
                     question=f"Is finding {i} present?", answer="yes")
        for i, image in enumerate(images)])
    return project


def _launch(size: int, tag: str, base_url: str, project=None):
    from medmax_review.core import medmax
    from medmax_review.generation import services

    project = project or _records(size, tag)
    return services.job_create(project=project, task=medmax.VQA, backend="openai",
                               model="stub", base_url=base_url)


def _await(job) -> None:
    from medmax_review.generation.models import GenerationJob

    while True:
        status = GenerationJob.objects.filter(pk=job.pk).values_list("status", flat=True)[0]
        if status not in (GenerationJob.PENDING, GenerationJob.RUNNING):
            return
        time.sleep(0.01)


def _run(size: int, tag: str, stub) -> dict:
    """One job of `size` records, from launch to done, with whatever workers are running."""
    from medmax_review.generation.models import GenerationJob

    stub.requests.clear()
    stub.peak = 0
    stub.spans.clear()
    project = _records(size, tag)  # the data is there before the job is launched
    started = time.perf_counter()
    job = _launch(size, tag, stub.base_url, project)
    _await(job)
    wall = time.perf_counter() - started
    job.refresh_from_db()
    assert (job.status, job.done) == (GenerationJob.DONE, size), (job.status, job.error, job.done)
    first = min(a for a, _ in stub.spans) - started
    last = max(b for _, b in stub.spans) - started
    # Where the time beyond the ideal goes: before the first request reaches the server, while
    # requests are answered, and after the last answer until the job reads done.
    return {"records": size, "wall_s": round(wall, 3), "chunks": job.chunks.count(),
            "peak_in_flight": stub.peak, "requests": len(stub.requests),
            "to_first_request_s": round(first, 3), "requests_s": round(last - first, 3),
            "after_last_answer_s": round(wall - last, 3)}


def _timed(stub) -> None:
    """Record when each request arrives and is answered (perf_counter, this process's clock)."""
    answer = stub.default
    stub.spans = []

    def timed(body):
        arrived = time.perf_counter()
        reply = answer(body)
        stub.spans.append((arrived, time.perf_counter()))
        return reply

    stub.default = timed


def _warm(count: int, size: int, base_url: str) -> None:
    """One small job per worker, launched together: each worker runs one (a worker holds one
    message at a time), so no timed job meets a worker's first-job costs."""
    jobs = [_launch(size, f"warm{count}-{n}", base_url) for n in range(count)]
    for job in jobs:
        _await(job)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.2, help="seconds added per request")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--concurrency", type=int, default=8, help="the job's requests in flight")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-generation-"))
    env = {
        **os.environ, "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
        "MEDMAX_VAR_DIR": str(workdir), "MEDIA_ROOT": str(workdir / "media"),
        "CELERY_BROKER_URL": BROKER, "LLM_CONCURRENCY": str(args.concurrency),
        "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "medmax_review.settings",
    }
    env.pop("TEST_DATABASE_NAME", None)
    os.environ.update(env)
    _ensure_database()
    import django
    import redis

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from medmax_review.generation import services

    # The tests' counting stub, on ports of its own so a test run beside this one is no bother.
    from tests.generation.conftest import CountingStub

    stub = CountingStub(args.latency, ports=PORTS)
    _timed(stub)
    settings.LLM_ALLOWED_BASE_URLS = [stub.base_url]
    env["LLM_ALLOWED_BASE_URLS"] = stub.base_url
    call_command("migrate", verbosity=0)
    services.templates_ensure_defaults()  # one-time set-up, not part of any timing
    broker = redis.Redis.from_url(BROKER)
    broker.flushdb()

    rows = []
    print(f"stub latency {args.latency * 1000:.0f} ms per request; the job keeps "
          f"{args.concurrency} requests in flight; ideal = records x latency / {args.concurrency}")
    print(f"{'workers':>7} {'records':>8} {'chunks':>6} {'ideal s':>8} {'wall s':>8} "
          f"{'wall/ideal':>10} {'peak in flight':>14} {'to 1st s':>8} {'answers s':>9} "
          f"{'after s':>7}")
    for count in args.workers:
        processes = _workers(count, env, workdir)
        try:
            _warm(count, args.concurrency, stub.base_url)
            for size in args.sizes:
                row = _run(size, f"{count}w{size}", stub)
                ideal = size * args.latency / args.concurrency
                row.update(workers=count, ideal_s=round(ideal, 3),
                           ratio=round(row["wall_s"] / ideal, 3))
                rows.append(row)
                print(f"{count:>7} {size:>8} {row['chunks']:>6} {ideal:>8.2f} "
                      f"{row['wall_s']:>8.2f} {row['ratio']:>9.2f}x {row['peak_in_flight']:>14} "
                      f"{row['to_first_request_s']:>8.2f} {row['requests_s']:>9.2f} "
                      f"{row['after_last_answer_s']:>7.2f}")
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=30)
    broker.flushdb()  # the scoring messages nobody here consumes
    stub.close()
    if args.json:
        args.json.write_text(json.dumps({
            "latency_s": args.latency, "concurrency": args.concurrency,
            "chunk_size": settings.GENERATION_CHUNK_SIZE, "runs": rows,
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
