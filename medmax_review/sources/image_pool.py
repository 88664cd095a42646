"""New images verified on every core: decoding is the one step of an import bound by the CPU,
and each image stands alone. `start` returns at once, so the import reads its next batch while
the pool decodes this one.

The pool starts with the first batch that has enough new images and lasts the whole import.
It starts inside a Celery prefork worker too (see children_allowed). Where it cannot start (a
sandbox without semaphores), or if it breaks, the images are checked in this process instead.
"""

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from django.conf import settings

from medmax_review.sources import image_files
from medmax_review.sources.image_verify import ImageInfo, Limits, relative_path, verify_and_write

log = logging.getLogger(__name__)

# Fewer new images than this are checked here: starting workers costs more than they save.
POOL_MIN = 64
# AssertionError: multiprocessing's refusal to start children from a daemonic process;
# CancelledError: the rest of a batch once the pool was given up.
POOL_FAILURES = (BrokenProcessPool, CancelledError, OSError, ValueError, AssertionError)


def watch_parent(pid: int) -> None:
    """Runs in each pool worker: end it once the importing process is gone. A worker whose
    importer was killed would otherwise wait for work forever (and keep the forkserver up)."""

    def watch() -> None:
        while True:
            time.sleep(1)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # alive, under another user id
                pass

    threading.Thread(target=watch, daemon=True, name="watch-parent").start()


@contextmanager
def children_allowed():
    """Celery's prefork pool runs each task in a daemonic process, and multiprocessing refuses
    children to one, lest they outlive it unwatched. The pool's workers watch the importing
    process and end with it (watch_parent), so the refusal is lifted while they are started:
    otherwise every import run by a worker would decode its images on one core. The process's
    key is billiard's own type there, which multiprocessing will not send to its forkserver;
    the same bytes go as multiprocessing's type."""
    config = multiprocessing.current_process()._config
    saved = {name: config[name] for name in ("daemon", "authkey") if name in config}
    config["daemon"] = False
    if "authkey" in config:
        config["authkey"] = multiprocessing.process.AuthenticationString(bytes(config["authkey"]))
    try:
        yield
    finally:
        config.pop("daemon", None)
        config.update(saved)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Checking:
    """Images being checked; `results()` waits for them, in the order they were given."""

    def __init__(self, checker: "ImageChecker", chunks: list[list], futures: list[Future | None]):
        self.checker, self.chunks, self.futures = checker, chunks, futures

    def results(self) -> list[ImageInfo | str]:
        out: list[ImageInfo | str] = []
        for chunk, future in zip(self.chunks, self.futures, strict=True):
            if future is not None:
                try:
                    out += future.result()
                    self.checker.pooled += len(chunk)
                    continue
                except POOL_FAILURES as exc:
                    self.checker.give_up(exc)
            out += self.checker.here(chunk)
        if image_files.object_store() is not None:
            # The pool only verified them: object storage is written from here.
            items = [item for chunk in self.chunks for item in chunk]
            image_files.write_many([(relative_path(sha, info.ext), data)
                                    for (data, sha), info in zip(items, out, strict=True)
                                    if isinstance(info, ImageInfo)])
        return out


class ImageChecker:
    """Verify and write new images: `start([(data, sha256), ...]).results()`."""

    def __init__(self, *, workers: int | None = None):
        self.workers = workers or cores()
        self._pool: ProcessPoolExecutor | None = None
        self._usable = self.workers > 1
        self.checked = 0  # images decoded, here or in the pool
        self.pooled = 0  # of those, decoded in the pool
        # Batches are started by the import's reader and their results taken by its writer,
        # which gives the pool up if it broke: not while the reader submits to it.
        self._lock = threading.RLock()

    def start(self, items: list[tuple[bytes, str]]) -> Checking:
        with self._lock:
            return self._start(items)

    def _start(self, items: list[tuple[bytes, str]]) -> Checking:
        self.checked += len(items)
        pool = self._pool_for(len(items))
        if pool is None:
            return Checking(self, [items], [None])
        size = -(-len(items) // self.workers)  # one chunk per worker: one round trip each
        chunks = [items[i:i + size] for i in range(0, len(items), size)]
        futures: list[Future | None] = []
        for chunk in chunks:
            future = None
            if self._pool is not None:  # not given up on an earlier chunk
                try:
                    # The executor starts its workers as work is submitted.
                    with children_allowed():
                        future = pool.submit(verify_and_write, chunk, *self._args())
                except POOL_FAILURES as exc:
                    self.give_up(exc)
            futures.append(future)
        return Checking(self, chunks, futures)

    def here(self, items: list[tuple[bytes, str]]) -> list[ImageInfo | str]:
        return verify_and_write(items, *self._args())

    @staticmethod
    def _args() -> tuple[str | None, Limits]:
        root = None if image_files.object_store() is not None else str(settings.MEDIA_ROOT)
        return root, Limits(settings.MEDMAX_MAX_IMAGE_BYTES, settings.MEDMAX_MAX_IMAGE_PIXELS)

    def _pool_for(self, count: int) -> ProcessPoolExecutor | None:
        if self._pool is None and self._usable and count >= POOL_MIN:
            try:
                # forkserver: workers start from a clean process, not a copy of this one with
                # its database connection and threads.
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers, mp_context=multiprocessing.get_context("forkserver"),
                    initializer=watch_parent, initargs=(os.getpid(),),
                )
            except POOL_FAILURES as exc:
                self.give_up(exc)
        return self._pool

    def summary(self) -> str:
        """For the import's log line: where its new images were checked."""
        if not self.checked:
            return "no new images checked"
        where = f"{self.pooled} in a pool of {self.workers} processes" if self.pooled else "all here"
        return f"{self.checked} new images checked, {where}"

    def give_up(self, exc: Exception) -> None:
        with self._lock:
            if self._usable:
                log.warning("image pool unavailable (%s: %s); checking images in this process",
                            type(exc).__name__, exc)
            self._usable = False
            self.close()

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
