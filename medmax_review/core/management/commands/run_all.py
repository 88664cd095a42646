"""Serve the web UI and run a Celery worker side by side until Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server on 127.0.0.1:8000 and a Celery worker, stopping both together."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=4)

    def handle(self, *args, addr, concurrency, **options):
        env = os.environ.copy()
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "medmax_review", "worker",
                "--pool=threads", f"--concurrency={concurrency}", "--loglevel=INFO",
                "--without-gossip", "--without-mingle",
            ],
            env=env,
        )
        web = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", addr, "--noreload"], env=env
        )
        self.stdout.write(f"web UI on http://{addr}/  ·  worker pid {worker.pid}  ·  Ctrl-C stops both")
        try:
            while worker.poll() is None and web.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for proc in (web, worker):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in (web, worker):
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
