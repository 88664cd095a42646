"""Reading ahead in a thread: the same items in the same order, errors raised where they are
consumed, the thread gone once the caller stops, and the snapshot each kind of caller sees."""

import threading

import pytest
from django.db import connection, connections

from medmax_review.core.read_ahead import read_ahead
from medmax_review.projects.models import Project


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "read-ahead"]


def _slugs_in_batches(size: int):
    slugs = list(Project.objects.order_by("slug").values_list("slug", flat=True))
    for start in range(0, len(slugs), size):
        yield slugs[start:start + size]


@pytest.mark.django_db
def test_inside_a_transaction_the_reader_sees_what_it_sees():
    # given projects created in the test's own, uncommitted transaction
    Project.objects.bulk_create([Project(slug=f"p{i:02d}", name=f"p{i}") for i in range(25)])
    # when read ahead, three at a time
    batches = list(read_ahead(lambda: _slugs_in_batches(3), depth=2))
    # then the reader saw them, in order, in the same batches as a direct read
    assert batches == list(_slugs_in_batches(3))
    assert sum(map(len, batches)) == Project.objects.count() >= 25
    assert not _readers()


@pytest.mark.django_db
def test_an_error_in_the_reader_is_raised_to_the_caller():
    def failing():
        yield 1
        raise LookupError("no such row")

    seen = []
    with pytest.raises(LookupError, match="no such row"):
        for item in read_ahead(failing):
            seen.append(item)
    assert seen == [1]
    assert not _readers()


@pytest.mark.django_db
def test_a_caller_that_stops_early_stops_the_reader():
    made = []

    def endless():
        n = 0
        while True:
            made.append(n)
            yield n
            n += 1

    items = read_ahead(endless, depth=2)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()
    # then the reader is joined, stopped a few items ahead, and the connection still serves
    assert not _readers()
    assert len(made) <= 3 + 2 + 1
    assert Project.objects.filter(slug="nothing").count() == 0


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_read_is_one_snapshot_and_the_callers_writes_commit():
    if connection.vendor != "postgresql":
        pytest.skip("REPEATABLE READ snapshots are PostgreSQL's")
    Project.objects.create(slug="first", name="first")

    def counts():
        for _ in range(3):
            yield Project.objects.count()

    items = read_ahead(counts, depth=1)
    assert next(items) == 1
    # when the caller writes (autocommit) while the reader is mid-read
    Project.objects.create(slug="second", name="second")
    # then another connection sees the write at once, and the reader keeps its snapshot
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM projects_project")
            assert cursor.fetchone()[0] == 2
    finally:
        other.close()
    assert list(items) == [1, 1]
    assert not _readers()
    assert Project.objects.count() == 2
