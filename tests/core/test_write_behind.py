"""Writing behind in a thread: writes run in order on a connection of their own, an error stops
the rest and reaches the caller, the thread and its connection are gone afterwards; inside a
transaction every write is the caller's own."""

import threading

import pytest
from django.db import connection, transaction

from medmax_review.core.write_behind import THREAD_NAME, WriteBehind
from medmax_review.projects.models import Project
from tests.conftest import require_service


def writer_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(THREAD_NAME)]


def _backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def _postgresql() -> None:
    if connection.vendor != "postgresql":
        require_service("PostgreSQL (DATABASE_URL=postgres://...)")


def _create(slug: str, seen: list) -> None:
    seen.append((slug, threading.current_thread().name, Project.objects.count()))
    Project.objects.create(slug=slug, name=slug)


@pytest.mark.django_db(transaction=True)
def test_writes_run_in_order_on_another_thread_and_commit():
    _postgresql()
    before = _backends()
    seen: list = []
    with WriteBehind(ahead=1) as writes:
        assert writes.threaded
        for i in range(6):
            writes.submit(_create, f"p{i}", seen)
    # each write saw every earlier one, ran on the writer thread, and is committed now
    assert [(slug, count) for slug, _, count in seen] == [(f"p{i}", i) for i in range(6)]
    assert {name for _, name, _ in seen} != {threading.current_thread().name}
    assert all(name.startswith(THREAD_NAME) for _, name, _ in seen)
    assert Project.objects.count() == 6
    # and the thread and its connection are gone
    assert not writer_threads()
    assert _backends() == before


@pytest.mark.django_db(transaction=True)
def test_an_error_reaches_the_caller_and_the_writes_after_it_are_dropped():
    _postgresql()
    seen: list = []
    release = threading.Event()

    def failing(slug, seen):
        release.wait(5)
        raise LookupError(f"no such row for {slug}")

    with pytest.raises(LookupError, match="no such row for bad"), WriteBehind(ahead=3) as writes:
        writes.submit(_create, "first", seen)
        writes.submit(failing, "bad", seen)
        writes.submit(_create, "after", seen)  # queued behind the failing write
        release.set()
        writes.wait()
    assert [slug for slug, _, _ in seen] == ["first"]
    assert list(Project.objects.values_list("slug", flat=True)) == ["first"]
    assert not writer_threads()


@pytest.mark.django_db(transaction=True)
def test_an_error_in_the_caller_waits_for_the_running_write_and_drops_the_rest():
    _postgresql()
    seen: list = []
    started, release = threading.Event(), threading.Event()

    def slow(slug, seen):
        started.set()
        release.wait(5)
        _create(slug, seen)

    with pytest.raises(RuntimeError, match="reader broke"), WriteBehind(ahead=2) as writes:
        writes.submit(slow, "running", seen)
        writes.submit(_create, "queued", seen)
        started.wait(5)
        release.set()
        raise RuntimeError("reader broke")
    # the running write finished whole; the queued one may have started meanwhile, never half
    slugs = set(Project.objects.values_list("slug", flat=True))
    assert "running" in slugs and slugs <= {"running", "queued"}
    assert not writer_threads()


@pytest.mark.django_db
def test_inside_a_transaction_every_write_is_the_callers_own():
    seen: list = []
    with transaction.atomic():
        with WriteBehind() as writes:
            assert not writes.threaded
            writes.submit(_create, "inside", seen)
            # done at once, in this thread, visible to the caller's transaction
            assert Project.objects.filter(slug="inside").exists()
        transaction.set_rollback(True)
    assert seen[0][1] == threading.current_thread().name
    assert not Project.objects.filter(slug="inside").exists()
