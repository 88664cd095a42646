"""Writing behind in a thread: a long write's batches are committed by one thread on a
connection of its own while the caller prepares the next ones. Each commit of a bulk write
waits for PostgreSQL (deferred foreign-key checks, the WAL flush, the end of a COPY); that wait
now overlaps the caller's Python instead of adding to it.

Writes run one at a time, in the order given, so a batch sees everything the batches before
it wrote. At most `ahead` writes wait behind the running one; the caller blocks beyond that, so
memory stays flat. An error in a write is raised in the caller at its next `submit` or at
`wait`, and the writes not yet started are dropped.

Inside a transaction (a strict import, a test's), and on SQLite, whose one writer would only
queue behind the caller, each write runs at once on the caller's own connection: the caller's
transaction holds everything, as it would without this.
"""

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import DEFAULT_DB_ALIAS, connections

THREAD_NAME = "write-behind"


class WriteBehind:
    def __init__(self, *, ahead: int = 1, using: str = DEFAULT_DB_ALIAS):
        caller = connections[using]
        self.threaded = caller.vendor == "postgresql" and not caller.in_atomic_block
        self.ahead = ahead
        self.using = using
        self._pending: deque[Future] = deque()
        self._stopped = False  # set by a failed write, or by the caller's own error
        self._executor = (ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME)
                          if self.threaded else None)

    def submit(self, write: Callable, *args, **kwargs) -> None:
        if self._executor is None:
            write(*args, **kwargs)
            return
        self._pending.append(self._executor.submit(self._guarded, write, args, kwargs))
        while len(self._pending) > self.ahead:
            self._pending.popleft().result()

    def _guarded(self, write: Callable, args, kwargs) -> None:
        if self._stopped:
            return  # a write before it failed: the caller hears of that one
        try:
            write(*args, **kwargs)
        except BaseException:
            self._stopped = True
            raise

    def wait(self) -> None:
        """Return once every write submitted so far is committed; raise the first error."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        if self._executor is None:
            return
        self._stopped = True  # the writes not started yet are dropped
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        # The thread's connection is its own: closed there, not left to the garbage collector.
        self._executor.submit(lambda: connections[self.using].close()).result()
        self._executor.shutdown(wait=True)
        self._executor = None

    def __enter__(self) -> "WriteBehind":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        try:
            if exc_type is None:
                self.wait()
        finally:
            self.close()
