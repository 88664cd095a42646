"""Review queue benchmark: server time of claim_next, a decision and the review screen's data.

Builds synthetic projects of increasing size in a separate PostgreSQL database (COPY, not the
ORM), then lets 1, 10 and 50 reviewer threads claim and approve at once, each with its own
connection. Prints p50/p95 per dataset and the ratio between the largest and smallest dataset:
a queue that scales keeps that ratio near 1.

    .venv/bin/python bench/bench_review.py                 # 10k, 100k, 1M candidates
    .venv/bin/python bench/bench_review.py --sizes 10000,100000,300000
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/medmax_bench (the default)
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/medmax_bench")
os.environ["DATABASE_URL"] = BENCH_URL
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medmax_review.settings")
os.environ.setdefault("CLAIM_TTL_SECONDS", "300")


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


ensure_database(BENCH_URL)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from medmax_review.projects import services as project_services  # noqa: E402
from medmax_review.projects.models import REVIEWER, Project  # noqa: E402
from medmax_review.review import claims, selectors, services  # noqa: E402
from medmax_review.review.models import Candidate, ReviewSlot  # noqa: E402
from medmax_review.sources.models import SourceRecord  # noqa: E402

MAX_REVIEWERS = 50
OPS_PER_CONFIG = 150  # claim+decide rounds per (dataset, reviewer count)


def _copy(model, rows) -> None:
    """COPY dict rows into the model's table; absent columns get the field's default."""
    now = datetime.now(UTC)
    fields = [f for f in model._meta.concrete_fields if not f.primary_key and not f.generated]
    columns = [f.column for f in fields]

    def value(f, row):
        if f.attname in row:
            v = row[f.attname]
        elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            v = now
        elif f.null:
            v = None
        else:
            v = f.get_default()
        if f.get_internal_type() == "JSONField" and v is not None:
            return json.dumps(v)
        return v

    raw = connection.connection
    table = model._meta.db_table
    with raw.cursor() as cur:
        with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([value(f, row) for f in fields])


def build(size: int) -> Project:
    slug = f"bench-{size}"
    project, _ = project_services.project_get_or_create(slug=slug, name=f"Bench {size:,}")
    built = Candidate.objects.filter(project=project).count() == size
    if built and ReviewSlot.objects.filter(project=project).count() == size:
        # Rebuilt state from an earlier run: reopen every slot so each run starts equal.
        ReviewSlot.objects.filter(project=project).update(
            state=ReviewSlot.OPEN, reviewer=None, claimed_at=None, claim_expires_at=None, done_at=None
        )
        Candidate.objects.filter(project=project).update(status="pending", version=1)
        from medmax_review.review.models import Decision

        Decision.objects.filter(candidate__project=project).delete()
        return project
    Project.objects.filter(pk=project.pk).delete()
    project, _ = project_services.project_get_or_create(slug=slug, name=f"Bench {size:,}")
    started = time.perf_counter()
    connection.ensure_connection()
    if True:  # noqa: SIM108  (one block per table, in dependency order)
        _copy(SourceRecord, (
            {"project_id": project.pk, "source": "bench", "external_id": str(i), "license": "CC0-1.0",
             "credential": "no", "question": "Which lung has an opacity?", "answer": "Right"}
            for i in range(size)
        ))
        record_ids = list(SourceRecord.objects.filter(project=project).order_by("id").values_list("id", flat=True))
        _copy(Candidate, (
            {"project_id": project.pk, "record_id": rid, "task": "vqa", "image_position": "none",
             "instruction": "Which lung has an opacity?", "response": "The right lung.",
             "priority": (i * 7919 % size) / size, "status": "pending", "version": 1}
            for i, rid in enumerate(record_ids)
        ))
        # Read before COPY starts: the connection cannot stream a query while it copies.
        rows = list(Candidate.objects.filter(project=project).values_list("id", "priority"))
        _copy(ReviewSlot, (
            {"project_id": project.pk, "candidate_id": cid, "index": 0, "priority": prio, "state": "open"}
            for cid, prio in rows
        ))
    with connection.cursor() as cur:
        cur.execute("ANALYZE review_reviewslot; ANALYZE review_candidate; ANALYZE review_decision")
    print(f"  built {size:,} candidates in {time.perf_counter() - started:.0f} s", flush=True)
    return project


def reviewers(project: Project) -> list:
    from django.contrib.auth import get_user_model

    users = []
    for i in range(MAX_REVIEWERS):
        user = get_user_model().objects.filter(username=f"bench{i}").first() or project_services.user_create(
            username=f"bench{i}", password="bench-password-not-secret"
        )
        project_services.membership_set(project=project, user=user, role=REVIEWER)
        users.append(user)
    return users


def run(project: Project, users: list, count: int) -> dict[str, list[float]]:
    """`count` reviewers claim, look and approve at once; per-operation server times in ms."""
    times = {"claim_next": [], "decision": [], "screen": []}
    lock = threading.Lock()
    rounds = max(3, OPS_PER_CONFIG // count)
    barrier = threading.Barrier(count)
    errors = []

    def work(user):
        try:
            barrier.wait()
            for _ in range(rounds):
                t0 = time.perf_counter()
                candidate = claims.claim_next(project=project, user=user)
                t1 = time.perf_counter()
                if candidate is None:
                    errors.append("queue empty")
                    return
                selectors.review_screen(candidate=candidate, user=user)
                t2 = time.perf_counter()
                services.decision_record(
                    candidate_id=candidate.pk, user=user, action="approve", version=candidate.version
                )
                t3 = time.perf_counter()
                with lock:
                    times["claim_next"].append((t1 - t0) * 1000)
                    times["screen"].append((t2 - t1) * 1000)
                    times["decision"].append((t3 - t2) * 1000)
        except Exception as exc:  # reported after the run
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(u,)) for u in users[:count]]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"benchmark run failed: {errors[:3]}")
    return times


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--reviewers", default="1,10,50")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    counts = [int(c) for c in args.reviewers.split(",")]
    call_command("migrate", verbosity=0)
    print(f"database {connection.settings_dict['NAME']} · PostgreSQL {connection.pg_version // 10000}"
          f" · {os.cpu_count()} CPUs · reviewers {counts}", flush=True)
    results: dict[tuple, dict] = {}
    for size in sizes:
        print(f"dataset {size:,}", flush=True)
        project = build(size)
        users = reviewers(project)
        claims.claim_next(project=project, user=users[0])  # warm the connection and plans
        claims.claims_release_for_user(user=users[0])
        for count in counts:
            times = run(project, users, count)
            results[(size, count)] = times
            line = "  ".join(
                f"{op} p50 {pct(v, 50):6.1f} p95 {pct(v, 95):6.1f}" for op, v in times.items()
            )
            print(f"  {count:>2} reviewers  {line}  (ms, n={len(times['claim_next'])})", flush=True)
    small, large = min(sizes), max(sizes)
    print(f"\nratio {large:,} / {small:,} candidates (p50, p95); near 1 means the cost does not grow:")
    for count in counts:
        parts = []
        for op in ("claim_next", "decision", "screen"):
            a, b = results[(small, count)][op], results[(large, count)][op]
            parts.append(f"{op} {pct(b, 50) / pct(a, 50):4.2f}x / {pct(b, 95) / pct(a, 95):4.2f}x")
        print(f"  {count:>2} reviewers  " + "   ".join(parts))


if __name__ == "__main__":
    main()
