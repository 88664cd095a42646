"""Serve the web UI and run a Celery worker side by side until Ctrl-C."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from medmax_review.core.accounts import accounts_banner


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
                # Beat inside the worker: the periodic sweeps (lost messages, old uploads).
                "--beat", f"--schedule={Path(settings.VAR_DIR) / 'celerybeat-schedule'}",
            ],
            env=env,
        )
        web = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", addr, "--noreload"], env=env
        )
        try:
            self._announce(addr, worker, web)
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

    def _announce(self, addr: str, worker, web) -> None:
        """Once the server answers, say where it is and show the accounts again: by then the
        worker's start-up log has scrolled the passwords printed earlier out of sight."""
        host, _, port = addr.rpartition(":")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and web.poll() is None:
            try:
                socket.create_connection((host or "127.0.0.1", int(port)), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        time.sleep(1.0)  # let the worker's banner print first
        self.stdout.write("\n" + accounts_banner())
        self.stdout.write(self.style.SUCCESS(
            f"web UI on http://{addr}/  ·  worker pid {worker.pid}  ·  Ctrl-C stops both"))
