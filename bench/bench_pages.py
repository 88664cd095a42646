"""The app's pages over HTTP, served by gunicorn, with 1, 10 and 50 reviewers at once.

Builds projects of growing size in a PostgreSQL database of its own (COPY, as bench_review.py
does: records, candidates, review slots; then a share approved and rejected with decisions, so
the dashboard, browser and statistics have every state to count), starts gunicorn with DEBUG off
on loopback, and lets N client threads (one HTTP connection and one signed-in session each)
work like reviewers: open the queue ("next", which claims), the review page, decide (the
response renders the next claimed candidate), and now and then the candidate browser, the
project dashboard and the statistics page. Client-side latency per page, p50 and p95, over three
turns per configuration in which the sizes take turns (forward, backward, forward), so a drift in
the machine's load falls on every size alike.

The limit beside each figure is a static file served by the same gunicorn under the same load:
the cost of an HTTP round trip on this machine with nothing of the app in it.

    .venv/bin/python bench/bench_pages.py --sizes 10000 100000 1470000 --reviewers 1 10 50
    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/medmax_bench (the default)
"""

import argparse
import json
import logging
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

# The sessions made here must be read by the server: both sign with this key.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))

import bench_review  # noqa: E402  (sets DATABASE_URL to the bench database and sets Django up)
import httpx  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from medmax_review.projects import services as project_services  # noqa: E402
from medmax_review.projects.models import ADJUDICATOR, Project  # noqa: E402
from medmax_review.review.models import Candidate, Decision, ReviewSlot  # noqa: E402

logging.getLogger("httpx").setLevel(logging.WARNING)

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("next", "review", "decision", "browser", "dashboard", "stats", "static")
REQUESTS_PER_CONFIG = 400  # per (size, reviewers) and turn: enough for a p95, bounded in time
PASSES = 3  # turns per (size, reviewers), the sizes in alternating order
WORKERS = 2 * (os.cpu_count() or 1)
THREADS = 8


def _decided(project: Project, reviewer) -> None:
    """A quarter approved, a tenth rejected (with a reviewer's decision, yesterday), the rest
    pending. The decisions are another reviewer's than the clients': "you: N today" counts a
    reviewer's own day, which no person makes a million of."""
    with connection.cursor() as cur:
        for status, action, modulo in (("approved", "approve", (0,)), ("rejected", "reject", (1,))):
            remainders = ",".join(str(m) for m in modulo)
            divisor = 4 if status == "approved" else 10
            cur.execute(
                f"UPDATE review_candidate SET status = %s, decided_at = now() WHERE project_id = %s "
                f"AND status = 'pending' AND id %% {divisor} IN ({remainders})", [status, project.pk])
            cur.execute(
                "UPDATE review_reviewslot s SET state = 'done', reviewer_id = %s, done_at = now() "
                "FROM review_candidate c WHERE s.candidate_id = c.id AND c.project_id = %s "
                "AND c.status = %s AND s.state = 'open'", [reviewer.pk, project.pk, status])
            cur.execute(
                "INSERT INTO review_decision (candidate_id, reviewer_id, action, reason, comment, "
                "system_note, candidate_version, instruction, response, created_at) "
                "SELECT id, %s, %s, %s, '', '', 1, '', '', now() - interval '1 day' "
                "FROM review_candidate "
                "WHERE project_id = %s AND status = %s",
                [reviewer.pk, action, "hallucination" if action == "reject" else "", project.pk,
                 status])
        cur.execute("ANALYZE review_candidate; ANALYZE review_reviewslot; ANALYZE review_decision")


def project_build(size: int) -> tuple[Project, list]:
    project = bench_review.build(size)
    users = bench_review.reviewers(project)
    for user in users:
        project_services.membership_set(project=project, user=user, role=ADJUDICATOR)
    if not Decision.objects.filter(candidate__project=project).exists():
        seeder = get_user_model().objects.filter(username="bench-seed").first() or \
            project_services.user_create(username="bench-seed", password=secrets.token_urlsafe())
        project_services.membership_set(project=project, user=seeder, role=ADJUDICATOR)
        _decided(project, seeder)
    return project, users


def session_for(user) -> str:
    """A signed-in session made directly (signing in over HTTP would time password hashing)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return store.session_key


BENCH_BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/11")


class Server:
    """gunicorn with DEBUG off on a free loopback port, on the bench database, and one Celery
    worker on the default queue beside it: it recomputes the stored dashboard and statistics
    figures while the clients work, as in a deployment."""

    def __init__(self, workers: int = WORKERS, threads: int = THREADS):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "DATABASE_URL": bench_review.BENCH_URL, "DEBUG": "False",
               "ALLOWED_HOSTS": "127.0.0.1",
               "SECURE_SSL_REDIRECT": "False", "CELERY_TASK_ALWAYS_EAGER": "False",
               "CELERY_BROKER_URL": BENCH_BROKER}
        import redis

        redis.Redis.from_url(BENCH_BROKER).flushdb()  # no figures refresh left from a past run
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
                       cwd=ROOT, env=env, check=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "medmax_review.wsgi", "--bind",
             f"127.0.0.1:{self.port}", "--workers", str(workers), "--threads", str(threads),
             # A project's figures are first computed by the request that asks for them,
             # reading every verdict: at MedMax size that takes longer than the default 30 s.
             "--worker-class", "gthread", "--timeout", "600", "--log-level", "warning",
             # As behind a proxy that keeps its connections to the app open. At the default
             # 2 s, a connection one of 50 client threads (sharing one process's CPU) reuses a
             # moment late is closed as it sends, and its request is lost.
             "--keep-alive", "30"],
            cwd=ROOT, env=env)
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "medmax_review", "worker", "-Q", "default",
             "-P", "solo", "--without-mingle", "--without-gossip", "-l", "WARNING"],
            cwd=ROOT, env=env)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(100):
            try:
                httpx.get(self.base + "/login/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("gunicorn did not start")

    def stop(self):
        for process in (self.process, self.worker):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # still busy with a long request or task
                process.kill()
                process.wait(timeout=30)


class Reviewer:
    """One browser-like client: its own connection, session cookie and CSRF token."""

    def __init__(self, base: str, slug: str, user):
        token = secrets.token_hex(16)
        self.http = httpx.Client(base_url=base, timeout=60, headers={
            "Cookie": f"sessionid={session_for(user)}; csrftoken={token}",
            "X-CSRFToken": token, "Referer": base + "/"})
        self.slug = slug
        self.times: dict[str, list[float]] = {page: [] for page in PAGES}

    def _timed(self, page: str, method: str, path: str, **kwargs) -> httpx.Response:
        started = time.perf_counter()
        response = self.http.request(method, path, **kwargs)
        self.times[page].append((time.perf_counter() - started) * 1000)
        if response.status_code >= 400:
            raise RuntimeError(f"{page}: HTTP {response.status_code} for {path}")
        return response

    def round(self, decisions: int, extras: bool) -> None:
        p = f"/p/{self.slug}"
        claimed = self._timed("next", "GET", f"{p}/review/")
        if claimed.status_code != 302:
            raise RuntimeError("the queue ran dry: build a larger dataset")
        candidate_id = int(re.search(r"/review/(\d+)/", claimed.headers["location"]).group(1))
        page = self._timed("review", "GET", f"{p}/review/{candidate_id}/")
        for _ in range(decisions):
            version = re.search(r'name="version" value="(\d+)"', page.text).group(1)
            page = self._timed("decision", "POST", f"{p}/review/{candidate_id}/decide/",
                               data={"action": "approve", "version": version},
                               headers={"HX-Request": "true"})
            candidate_id = int(re.search(r"/review/(\d+)/", page.headers["hx-push-url"]).group(1))
        self.http.get(f"{p}/review/{candidate_id}/")  # keep the last claim tidy: not timed
        if extras:
            self._timed("browser", "GET", f"{p}/candidates/")
            self._timed("dashboard", "GET", f"{p}/")
            self._timed("stats", "GET", f"{p}/candidates/stats/")
        self._timed("static", "GET", "/static/css/app.css")


def run(server: Server, project: Project, users: list, count: int) -> dict[str, list[float]]:
    clients = [Reviewer(server.base, project.slug, u) for u in users[:count]]
    rounds = max(2, REQUESTS_PER_CONFIG // (count * 8))
    barrier = threading.Barrier(count)
    errors = []

    def work(index, client):
        try:
            barrier.wait()
            for i in range(rounds):
                # Half the clients open the other pages in one round, half in the next: not all
                # at the instant the barrier lets them go.
                client.round(decisions=4, extras=(i + index) % 2 == 0)
        except Exception as exc:  # reported after the run
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(n, c)) for n, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ReviewSlot.objects.filter(project=project, state=ReviewSlot.CLAIMED).update(
        state=ReviewSlot.OPEN, reviewer=None, claimed_at=None, claim_expires_at=None)
    times = {page: [t for c in clients for t in c.times[page]] for page in PAGES}
    # A request that failed (a client gives up after 60 s) is reported, not hidden: the
    # configuration's figures say how many failed and the first reasons.
    return times, errors


def plans(project: Project, user) -> list[dict]:
    """Every SELECT the pages run for one reviewer, with the plan PostgreSQL picks at this size
    and what each sequential scan in it read when run (EXPLAIN ANALYZE, rolled back): a scan
    that reads the whole of a large table would make the page grow with the project."""
    from django.conf import settings
    from django.db import transaction
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    settings.ALLOWED_HOSTS = ["testserver", *settings.ALLOWED_HOSTS]
    client = Client()
    client.force_login(user)
    p = f"/p/{project.slug}"
    found = []
    claimed = client.get(f"{p}/review/")
    paths = {"next": f"{p}/review/", "review": claimed.get("Location", f"{p}/review/"),
             "browser": f"{p}/candidates/", "dashboard": f"{p}/", "stats": f"{p}/candidates/stats/"}
    for page, path in paths.items():
        with CaptureQueriesContext(connection) as queries:
            client.get(path)
        for query in queries.captured_queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith(("SELECT", "WITH")) or "django_session" in sql:
                continue
            # Run for real to count what each scan reads; a WITH may hold an UPDATE: undone.
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute("EXPLAIN ANALYZE " + sql)
                plan = [row[0] for row in cur.fetchall()]
                transaction.set_rollback(True)
            scans = seq_scans(plan)
            found.append({"page": page, "sql": sql[:300], "top": plan[0].strip(),
                          "seq_scans": [scan["node"] for scan in scans], "scans": scans})
    ReviewSlot.objects.filter(project=project, state=ReviewSlot.CLAIMED).update(
        state=ReviewSlot.OPEN, reviewer=None, claimed_at=None, claim_expires_at=None)
    return found


_ACTUAL = re.compile(r"\(actual time=[\d.]+\.\.[\d.]+ rows=(\d+) loops=(\d+)\)")
_REMOVED = re.compile(r"Rows Removed by Filter: (\d+)")


def seq_scans(plan: list[str]) -> list[dict]:
    """Each sequential scan of an EXPLAIN ANALYZE plan: its node, the rows it read (returned
    plus removed by its filter, over every loop), and whether a LIMIT above it stopped it."""
    scans = []
    for i, line in enumerate(plan):
        if "Seq Scan" not in line:
            continue
        actual = _ACTUAL.search(line)
        rows, loops = (int(actual[1]), int(actual[2])) if actual else (0, 1)
        depth = len(line) - len(line.lstrip())
        removed = 0
        for detail in plan[i + 1:]:  # the node's own lines sit deeper, before the next node
            if "->" in detail or len(detail) - len(detail.lstrip()) <= depth:
                break
            if match := _REMOVED.search(detail):
                removed = int(match[1])
        limited, level = False, depth
        for above in reversed(plan[:i]):  # its ancestors: each less indented than the last
            indent = len(above) - len(above.lstrip())
            if indent < level:
                level = indent
                limited = limited or above.lstrip().lstrip("-> ").startswith("Limit")
        scans.append({"node": _ACTUAL.sub("", line).strip(), "rows_read": (rows + removed) * loops,
                      "under_limit": limited})
    return scans


def pct(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_470_000])
    parser.add_argument("--reviewers", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(f"gunicorn {WORKERS} workers x {THREADS} threads · PostgreSQL "
          f"{connection.pg_version // 10000} · {os.cpu_count()} CPUs · {datetime.now(UTC):%Y-%m-%d}",
          flush=True)
    server = None
    # Every size's project is built first and the sizes take turns, forward then backward, for
    # each number of reviewers: load from elsewhere on a shared machine drifts over minutes, and
    # a ratio between sizes must not read that drift.
    samples: dict[tuple[int, int], dict] = {}
    try:
        projects = {size: project_build(size) for size in args.sizes}
        server = Server()
        for project, users in projects.values():
            # Untimed: every gunicorn worker loads its code, templates and connection first.
            run(server, project, users, min(WORKERS * 2, len(users)))
        for count in args.reviewers:
            for turn in range(PASSES):
                for size in (args.sizes if turn % 2 == 0 else args.sizes[::-1]):
                    project, users = projects[size]
                    times, errors = run(server, project, users, count)
                    got = samples.setdefault((size, count), {"times": {p: [] for p in PAGES},
                                                             "errors": []})
                    for page, values in times.items():
                        got["times"][page] += values
                    got["errors"] += errors
        project, users = projects[max(args.sizes)]
        query_plans = plans(project, users[0])
    finally:
        if server:
            server.stop()
    results = []
    for size in args.sizes:
        project, _ = projects[size]
        for count in args.reviewers:
            got = samples[size, count]
            errors = got["errors"]
            row = {"size": size, "reviewers": count, "candidates": Candidate.objects.filter(
                project=project).count(), "failed": len(errors), "errors": errors[:3]}
            for page, values in got["times"].items():
                row[page] = {"p50": pct(values, 50), "p95": pct(values, 95), "n": len(values)}
            results.append(row)
            print(f"{size:>10,} cand · {count:>2} reviewers  " + "  ".join(
                f"{page} {row[page]['p50']:.1f}/{row[page]['p95']:.1f}" for page in PAGES)
                + "  (ms p50/p95)" + (f"  {len(errors)} clients failed: {errors[:2]}"
                                      if errors else ""), flush=True)
    small, large = min(args.sizes), max(args.sizes)
    print(f"\np50 at {large:,} / p50 at {small:,} (within 1.5x: the page does not grow with the "
          f"project):")
    for count in args.reviewers:
        a = next(r for r in results if r["size"] == small and r["reviewers"] == count)
        b = next(r for r in results if r["size"] == large and r["reviewers"] == count)
        print(f"  {count:>2} reviewers  " + "  ".join(
            f"{page} {b[page]['p50'] / a[page]['p50']:.2f}x" for page in PAGES))
    scans = [q for q in query_plans if q["seq_scans"]]
    print(f"\nplans at {large:,}: {len(query_plans)} queries, {len(scans)} with a sequential scan")
    for q in scans:
        for scan in q["scans"]:
            print(f"  {q['page']}: {scan['node']}: read {scan['rows_read']:,} rows"
                  f"{' (under a LIMIT)' if scan['under_limit'] else ''}  <- {q['sql'][:120]}")
    if args.json:
        args.json.write_text(json.dumps({"workers": WORKERS, "threads": THREADS,
                                         "results": results, "plans": query_plans}, indent=2))


if __name__ == "__main__":
    main()
