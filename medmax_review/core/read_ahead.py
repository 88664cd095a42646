"""Reading ahead in a thread: the next batches of a long read are fetched while the caller works
on the current one, so the database's time (and the wire's) overlaps the caller's Python.

Inside a transaction, the thread uses the caller's own connection, shared the way Django's
live-server thread shares one, so it sees exactly what the transaction sees (a test's included);
psycopg serialises the two threads' statements on it. Outside one, the thread reads on a
connection of its own, in one transaction (REPEATABLE READ on PostgreSQL): every query of the
read sees one snapshot, and PostgreSQL streams a named cursor instead of materialising it WITH
HOLD before the first row (7 s for 1.47M export rows), while the caller's own writes
(heartbeats) commit as they are made. At most `depth` items wait, so memory stays flat
whatever the size of the read.
"""

import queue
import threading
from collections.abc import Callable, Iterable, Iterator

from django.db import DEFAULT_DB_ALIAS, connections, transaction

_END = object()
_POLL = 0.1  # seconds: how soon a blocked reader notices the caller stopped


def read_ahead(make: Callable[[], Iterable], *, depth: int = 2,
               using: str = DEFAULT_DB_ALIAS) -> Iterator:
    """Yield what `make()` yields, read by a thread up to `depth` items ahead. An error in the
    reader is raised here; when the caller stops early, the reader stops and is joined."""
    caller = connections[using]
    shared = caller if caller.in_atomic_block else None
    if shared is not None:
        shared.ensure_connection()  # opened once, here, not by two threads at once
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        items = iter(make())
        try:
            for item in items:
                if not hand_over((True, item)):
                    return
        finally:
            getattr(items, "close", lambda: None)()  # a named cursor is closed here
        hand_over((False, _END))

    def reader() -> None:
        try:
            if shared is not None:
                connections[using] = shared
                read()
                return
            try:
                with transaction.atomic(using=using):
                    own = connections[using]
                    if own.vendor == "postgresql":
                        with own.cursor() as cursor:  # the transaction's first statement
                            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                    read()
            finally:
                connections[using].close()
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            hand_over((False, exc))

    if shared is not None:
        shared.inc_thread_sharing()
    thread = threading.Thread(target=reader, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            is_item, item = ready.get()
            if is_item:
                yield item
            elif item is _END:
                return
            else:
                raise item
    finally:
        stop.set()
        thread.join()
        if shared is not None:
            shared.dec_thread_sharing()
