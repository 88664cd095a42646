"""Generation wall time against a local OpenAI-compatible stub with a fixed added latency.

Compares a generation job (requests kept in flight by a thread pool, candidates saved in
batches) with a plain loop that sends one request at a time and saves nothing. Uses a fresh
SQLite database in a temporary folder, so it touches no other data.

    .venv/bin/python bench/bench_generation.py [--latency 0.2] [--sizes 16 32 64]
"""

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PORTS = range(8130, 8140)


def stub_server(latency: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(latency)
            content = json.dumps({"instruction": "What does the image show?", "response": "A CT."})
            data = json.dumps({
                "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": content}}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    for port in PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
                server.daemon_threads = True
                threading.Thread(target=server.serve_forever, daemon=True).start()
                return server
    raise SystemExit(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.2, help="seconds added per request")
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    server = stub_server(args.latency)
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    workdir = tempfile.mkdtemp(prefix="bench-generation-")
    os.environ.update({
        "DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3", "MEDMAX_VAR_DIR": workdir,
        "CELERY_BROKER_URL": "memory://", "LLM_ALLOWED_BASE_URLS": base_url,
        "LLM_CONCURRENCY": str(args.concurrency), "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "medmax_review.settings",
    })
    import django

    django.setup()
    import openai
    from django.core.management import call_command

    from medmax_review.core import medmax
    from medmax_review.generation import services
    from medmax_review.projects.services import project_get_or_create
    from medmax_review.sources.models import ImageAsset, SourceRecord

    call_command("migrate", verbosity=0)
    services.templates_ensure_defaults()  # one-time set-up, not part of any timing
    client = openai.OpenAI(base_url=base_url, api_key="none", max_retries=0)
    # Warm-up: the client's lazy imports and first connection are not what is measured.
    client.chat.completions.create(model="stub", messages=[{"role": "user", "content": "hi"}])
    print(f"stub latency {args.latency * 1000:.0f} ms per request; job concurrency {args.concurrency}")
    print(f"{'records':>8} {'plain loop s':>13} {'job s':>8} {'speed-up':>9}")
    for size in args.sizes:
        project, _ = project_get_or_create(slug=f"bench-{size}", name=f"bench {size}")
        for i in range(size):
            image = ImageAsset.objects.create(
                sha256=f"{size:08d}{i:056d}", file=f"bench/{size}/{i}.png", format="png",
                width=1, height=1, size_bytes=1,
            )
            SourceRecord.objects.create(
                project=project, source="bench", external_id=str(i), image=image,
                question=f"Is finding {i} present?", answer="yes",
            )

        started = time.perf_counter()
        for record in SourceRecord.objects.filter(project=project).order_by("id"):
            client.chat.completions.create(
                model="stub", messages=[{"role": "user", "content": record.question}],
                response_format={"type": "json_object"},
            )
        plain = time.perf_counter() - started

        started = time.perf_counter()
        job = services.job_create(project=project, task=medmax.VQA, backend="openai",
                                  model="stub", base_url=base_url)
        services.job_run(job_id=job.pk)
        ours = time.perf_counter() - started
        job.refresh_from_db()
        assert job.done == size, (job.status, job.error, job.done)
        print(f"{size:>8} {plain:>13.2f} {ours:>8.2f} {plain / ours:>8.1f}x")
    server.shutdown()


if __name__ == "__main__":
    main()
