"""New images verified on every core: decoding is the one step of an import bound by the CPU,
and each image stands alone.

The pool starts with the first batch that has enough new images and lasts the whole import.
Where it cannot start (a daemonic worker process may not have children, a sandbox without
semaphores), or if it breaks, the images are checked in this process instead.
"""

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from itertools import repeat

from django.conf import settings

from medmax_review.sources.image_verify import ImageInfo, Limits, verify_and_write

log = logging.getLogger(__name__)

# Fewer new images than this are checked here: starting workers costs more than they save.
POOL_MIN = 64


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class ImageChecker:
    """Verify and write new images: `check([(data, sha256), ...])` -> [ImageInfo | problem]."""

    def __init__(self, *, workers: int | None = None):
        self.workers = workers or cores()
        self._pool: ProcessPoolExecutor | None = None
        self._usable = self.workers > 1
        self.checked = 0  # images decoded, here or in the pool

    def check(self, items: list[tuple[bytes, str]]) -> list[ImageInfo | str]:
        limits = Limits(settings.MEDMAX_MAX_IMAGE_BYTES, settings.MEDMAX_MAX_IMAGE_PIXELS)
        media_root = str(settings.MEDIA_ROOT)
        self.checked += len(items)
        pool = self._pool_for(len(items))
        if pool is not None:
            try:
                return list(pool.map(
                    verify_and_write, (d for d, _ in items), (s for _, s in items),
                    repeat(media_root), repeat(limits),
                    chunksize=max(1, len(items) // (self.workers * 4)),
                ))
            # AssertionError: multiprocessing's refusal to start children in a daemonic process.
            except (BrokenProcessPool, OSError, AssertionError) as exc:
                log.warning("image pool failed (%s); checking images in this process", exc)
                self._usable = False
                self.close()
        return [verify_and_write(data, sha, media_root, limits) for data, sha in items]

    def _pool_for(self, count: int) -> ProcessPoolExecutor | None:
        if self._pool is None and self._usable and count >= POOL_MIN:
            try:
                # forkserver: workers start from a clean process, not a copy of this one with
                # its database connection and threads.
                self._pool = ProcessPoolExecutor(
                    max_workers=self.workers, mp_context=multiprocessing.get_context("forkserver")
                )
            except (OSError, ValueError) as exc:
                log.warning("no image pool (%s); checking images in this process", exc)
                self._usable = False
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
