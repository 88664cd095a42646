"""An import's cost stays per row: stored images are not decoded again, new ones are decoded
once per run (on every core for a large batch), rows go in with COPY, problems past the first
ones are only counted, and progress and the DEBUG query log do not grow with the file."""

import contextlib
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from PIL import Image

from medmax_review.core.bulk_write import rows_insert
from medmax_review.core.write_behind import THREAD_NAME
from medmax_review.review.models import Candidate
from medmax_review.sources import image_pool, image_verify, importer
from medmax_review.sources.image_pool import ImageChecker
from medmax_review.sources.models import ImageAsset, ImportRun, SourceRecord
from medmax_review.sources.services import ERRORS_KEPT, import_run_create, records_import
from tests.conftest import require_service
from tests.core.test_write_behind import writer_threads
from tests.sources.conftest import demo_row, png_bytes, write_jsonl

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def decodes(monkeypatch):
    """How many times Pillow opened an image in this process (verify opens each one twice)."""
    calls = []
    real_open = Image.open

    def counting_open(*args, **kwargs):
        calls.append(1)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(image_verify.Image, "open", counting_open)
    return calls


def _run(project):
    return import_run_create(project=project, file_name="rows.jsonl", fmt="auto", options={})


def test_records_import_stored_images_are_not_decoded_again(project, image_folder, decodes):
    # Given images stored by an earlier import
    records_import(project=project, path=write_jsonl(image_folder / "a.jsonl",
                                                     [demo_row(i) for i in range(3)]))
    assert len(decodes) == 3 * 2
    decodes.clear()

    # When other rows name the same files
    report = records_import(project=project, path=write_jsonl(
        image_folder / "b.jsonl", [demo_row(i, id=f"b{i}") for i in range(30)]))

    # Then the rows point at the stored images and nothing was decoded
    assert (report.created, report.errors) == (30, [])
    assert decodes == []
    assert ImageAsset.objects.count() == 3
    assert SourceRecord.objects.filter(external_id="b4").get().image.sha256 == \
        SourceRecord.objects.get(external_id="r1").image.sha256


def test_records_import_decodes_each_new_image_once_per_run(project, image_folder, decodes,
                                                            monkeypatch):
    # Given batches of 10 rows over the same three files
    monkeypatch.setattr(importer, "BATCH_SIZE", 10)
    path = write_jsonl(image_folder / "rows.jsonl", [demo_row(i) for i in range(50)])

    report = records_import(project=project, path=path)

    # Then each file was decoded once for the whole run
    assert report.created == 50
    assert len(decodes) == 3 * 2
    assert SourceRecord.objects.filter(image__isnull=True).count() == 0


def test_image_checker_pool_matches_checking_here(db, settings):
    # Given more new images than the pool threshold, one of them broken
    items = [(png_bytes(color=i % 250, size=(8 + i % 5, 8)), f"{i:064x}") for i in range(70)]
    items[5] = (b"not an image", "f" * 64)

    # When checked by a pool of two workers and in this process
    with ImageChecker(workers=2) as checker:
        checking = checker.start(items)
        assert any(f is not None for f in checking.futures)  # handed to the pool
        pooled = checking.results()
    here = ImageChecker(workers=1).here(items)

    # Then both give the same answers and the pool wrote the accepted files
    assert pooled[:5] + pooled[6:] == here[:5] + here[6:]
    assert pooled[5].startswith("not a readable image") and here[5].startswith("not a readable")
    assert pooled[0] == image_verify.ImageInfo(ext="png", format="png", width=8, height=8)
    written = settings.MEDIA_ROOT / image_verify.relative_path(items[0][1], "png")
    assert written.read_bytes() == items[0][0]


def test_image_checker_falls_back_here_when_the_pool_breaks(db):
    items = [(png_bytes(color=i), f"{i:064x}") for i in range(70)]
    with ImageChecker(workers=2) as checker:
        assert all(isinstance(r, image_verify.ImageInfo) for r in checker.start(items).results())
        # When the pool's workers die
        for process in list(checker._pool._processes.values()):
            with contextlib.suppress(ProcessLookupError):  # one that already ended is as good
                os.kill(process.pid, signal.SIGKILL)
            process.join()
        # Then the next images are still checked, in this process
        results = checker.start(items).results()
    assert all(isinstance(r, image_verify.ImageInfo) for r in results)
    assert checker._pool is None


def test_image_checker_checks_here_when_no_worker_may_start(db, monkeypatch):
    # Given a process that may not have children (as a daemonic one, were the refusal not
    # lifted), and more new images than one chunk per worker
    items = [(png_bytes(color=i), f"{i:064x}") for i in range(70)]

    @contextlib.contextmanager
    def refused():
        config = multiprocessing.current_process()._config
        config["daemon"] = True
        try:
            yield
        finally:
            config.pop("daemon")

    monkeypatch.setattr(image_pool, "children_allowed", refused)

    # When they are checked
    with ImageChecker(workers=2) as checker:
        results = checker.start(items).results()

    # Then every chunk was checked here, none left to a pool given up on
    assert all(isinstance(r, image_verify.ImageInfo) for r in results)
    assert (checker.checked, checker.pooled, checker._pool) == (70, 0, None)
    assert checker.summary() == "70 new images checked, all here"


def test_children_allowed_lifts_the_daemon_flag_and_puts_it_back():
    config = multiprocessing.current_process()._config
    config["daemon"] = True
    try:
        with image_pool.children_allowed():
            assert not multiprocessing.current_process().daemon
        assert multiprocessing.current_process().daemon
    finally:
        config.pop("daemon")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's; elsewhere INSERTs")
def test_records_import_writes_records_with_copy_on_postgresql(project, image_folder):
    path = write_jsonl(image_folder / "rows.jsonl", [demo_row(i) for i in range(20)])

    with CaptureQueriesContext(connection) as queries:
        report = records_import(project=project, path=path)

    assert report.created == 20
    sql = [q["sql"] for q in queries.captured_queries]
    assert any("nextval" in s for s in sql)  # the ids COPY writes
    assert not any(s.startswith('INSERT INTO "sources_sourcerecord"') for s in sql)


def test_rows_insert_returns_the_ids_of_the_rows_in_order(project):
    ids = rows_insert(model=SourceRecord, rows=[
        {"project_id": project.pk, "source": "s", "external_id": f"e{i}", "meta": {"n": i}}
        for i in range(5)
    ])

    records = SourceRecord.objects.in_bulk(ids)
    assert [records[pk].external_id for pk in ids] == [f"e{i}" for i in range(5)]
    assert records[ids[3]].meta == {"n": 3}
    assert records[ids[0]].credential == "no" and records[ids[0]].created_at is not None


def test_rows_insert_reads_rows_whose_keys_differ_from_the_first(project):
    # Given rows of one call that name different fields (by attname, by name, or not at all),
    # and JSON that orjson cannot write (an integer past 64 bits, a key that is not text)
    rows = [
        {"project_id": project.pk, "source": "s", "external_id": "e0"},
        {"project": project, "source": "s", "external_id": "e1", "license": "CC0-1.0",
         "meta": {"big": 2**70}},
        {"project_id": project.pk, "source": "s", "external_id": "e2", "meta": {1: "one"}},
        {"project_id": project.pk, "source": "s", "external_id": "e3"},
    ]

    ids = rows_insert(model=SourceRecord, rows=rows)

    # Then every row keeps its own values and the others take their defaults
    records = SourceRecord.objects.in_bulk(ids)
    got = [(records[pk].external_id, records[pk].license, records[pk].meta, records[pk].project_id)
           for pk in ids]
    assert got == [("e0", "", {}, project.pk), ("e1", "CC0-1.0", {"big": 2**70}, project.pk),
                   ("e2", "", {"1": "one"}, project.pk), ("e3", "", {}, project.pk)]


def test_rows_insert_of_a_known_key_raises_and_keeps_nothing(project):
    SourceRecord.objects.create(project=project, source="s", external_id="e1")

    with pytest.raises(IntegrityError), transaction.atomic():
        rows_insert(model=SourceRecord, rows=[
            {"project_id": project.pk, "source": "s", "external_id": e} for e in ("e0", "e1")])

    assert list(SourceRecord.objects.values_list("external_id", flat=True)) == ["e1"]


def test_records_import_medmax_rows_of_one_record_in_one_batch(project, image_folder):
    # Given two tasks of the same record, and a repeated row, in one file
    vqa = {"id": "case-1", "text": "<image>Is it normal?<reserved08706>Yes.",
           "image_path": "img/0.png", "task": "vqa", "source": "set", "credential": "yes"}
    caption = {**vqa, "text": "<image>Describe the image.<reserved08706>A normal film.",
               "task": "image_captioning"}
    path = write_jsonl(image_folder / "rows.jsonl", [vqa, caption, vqa])

    report = records_import(project=project, path=path)

    # Then one record, and each candidate points at it with its credential
    assert (report.created, report.duplicates, report.candidates_created) == (1, 2, 2)
    record = SourceRecord.objects.get()
    assert set(Candidate.objects.values_list("record_id", "task", "credential")) == {
        (record.pk, "vqa", True), (record.pk, "image_captioning", True)}


def test_records_import_many_rejected_rows_keep_the_first_and_count_the_rest(
    project, image_folder
):
    run = _run(project)
    bad = [{"id": f"x{i}", "image": "img/0.png", "question": "q?"} for i in range(ERRORS_KEPT + 500)]
    path = write_jsonl(image_folder / "rows.jsonl", [demo_row(0), *bad, demo_row(1)])

    report = records_import(project=project, path=path, import_run=run)

    assert (report.created, report.rejected, report.problems) == (2, ERRORS_KEPT + 500,
                                                                    ERRORS_KEPT + 500)
    assert len(report.errors) == ERRORS_KEPT
    assert [e.line for e in report.errors[:2]] == [2, 3]  # in file order
    assert report.errors[0].field == "answer"
    stored = ImportRun.objects.get(pk=run.pk)
    assert (len(stored.errors), stored.problems, stored.rejected) == (
        ERRORS_KEPT, ERRORS_KEPT + 500, ERRORS_KEPT + 500)
    assert stored.problems_unlisted == 500


def _progress_updates(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries
            if q["sql"].startswith('UPDATE "sources_importrun"') and "heartbeat_at" in q["sql"]]


def test_records_import_progress_is_written_by_time_not_by_batch(project, image_folder,
                                                                 monkeypatch):
    # Given five batches that take well under the progress interval
    monkeypatch.setattr(importer, "BATCH_SIZE", 10)
    monkeypatch.setattr(importer, "PROGRESS_EVERY", 3600)
    run = _run(project)
    path = write_jsonl(image_folder / "rows.jsonl", [demo_row(i) for i in range(50)])

    with CaptureQueriesContext(connection) as queries:
        records_import(project=project, path=path, import_run=run)

    # Then progress was written once, at the first row and never again before the end
    assert len(_progress_updates(queries)) == 2
    assert ImportRun.objects.get(pk=run.pk).rows_done == 50


def test_records_import_rewrites_problems_only_when_they_grew(project, image_folder, monkeypatch):
    # Given progress written at every row, over bad rows past the listed maximum
    monkeypatch.setattr(importer, "PROGRESS_EVERY", 0)
    monkeypatch.setattr("medmax_review.sources.services.ERRORS_KEPT", 20)
    run = _run(project)
    bad = [{"id": f"x{i}", "image": "img/0.png", "question": "q?"} for i in range(300)]
    path = write_jsonl(image_folder / "rows.jsonl", bad)

    with CaptureQueriesContext(connection) as queries:
        report = records_import(project=project, path=path, import_run=run)

    # Then every write carried the counts, but the list only while it grew
    updates = _progress_updates(queries)
    assert report.rejected == 300 and len(report.errors) == 20
    assert len(updates) > 250
    assert sum('"errors"' in sql for sql in updates) <= 21


def test_records_import_keeps_no_query_log_under_debug(project, image_folder, settings,
                                                       monkeypatch):
    settings.DEBUG = True
    monkeypatch.setattr(importer, "BATCH_SIZE", 10)
    connection.queries_log.clear()
    path = write_jsonl(image_folder / "rows.jsonl", [demo_row(i) for i in range(200)])

    report = records_import(project=project, path=path)

    assert report.created == 200
    assert len(connection.queries_log) < 20  # the last batch's at most, not twenty batches'


IMPORTER_KILLED = """
import os, sys, time
import django
django.setup()
from medmax_review.sources.image_pool import ImageChecker
from tests.sources.conftest import png_bytes
checker = ImageChecker(workers=2)
checker.start([(png_bytes(color=i), f"{i:064x}") for i in range(70)]).results()
print(" ".join(str(pid) for pid in checker._pool._processes), flush=True)
time.sleep(60)
"""


def test_image_pool_workers_end_when_the_importing_process_is_killed(tmp_path):
    # Given an importing process whose pool has started
    env = {**os.environ, "MEDIA_ROOT": str(tmp_path),
           "DJANGO_SETTINGS_MODULE": "medmax_review.settings"}
    importer_process = subprocess.Popen([sys.executable, "-c", IMPORTER_KILLED], env=env,
                                        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    workers = [int(pid) for pid in importer_process.stdout.readline().split()]
    assert len(workers) == 2

    # When it is killed, as a worker lost mid-import is
    importer_process.send_signal(signal.SIGKILL)
    importer_process.wait(timeout=10)

    # Then its pool workers end too
    give_up = time.monotonic() + 10
    while any(_alive(pid) for pid in workers):
        assert time.monotonic() < give_up, "pool workers outlived their importer"
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone but for its exit status, which its parent (the forkserver) collects.
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(") ")[1][0] != "Z"


def test_in_array_finds_what_in_finds(project):
    ids = rows_insert(model=SourceRecord, rows=[
        {"project_id": project.pk, "source": "s", "external_id": f"e{i}"} for i in range(4)])
    records = SourceRecord.objects.filter(project=project)

    assert set(records.filter(external_id__in_array={"e1", "e3", "x"}).values_list("id", flat=True)) \
        == {ids[1], ids[3]}
    assert list(records.filter(external_id__in_array=set())) == []
    assert records.filter(image_id=None, credential__in_array=["no"]).count() == 4
    # Values not of the column's own type are prepared as Django prepares them for IN
    assert records.filter(pk__in_array=[str(ids[0])]).count() == records.filter(pk__in=[str(ids[0])]).count() == 1
    assert set(records.filter(external_id__in_array=(f"e{i}" for i in (0, 2))).values_list("id", flat=True)) \
        == {ids[0], ids[2]}


@pytest.fixture
def small_batches_written_behind(monkeypatch):
    """Batches of 10 rows, on PostgreSQL, where an import outside a transaction writes behind."""
    if connection.vendor != "postgresql":
        require_service("PostgreSQL (DATABASE_URL=postgres://...)")
    monkeypatch.setattr(importer, "BATCH_SIZE", 10)


@pytest.mark.django_db(transaction=True)
def test_records_import_outside_a_transaction_writes_behind_in_a_thread(
    project, image_folder, monkeypatch, small_batches_written_behind
):
    writers = []
    real_store = importer.Importer._store

    def store(self, batch, *args):
        writers.append(threading.current_thread().name)
        return real_store(self, batch, *args)

    monkeypatch.setattr(importer.Importer, "_store", store)
    run = _run(project)
    rows = [demo_row(i) for i in range(55)] + [{"id": "bad", "image": "img/0.png", "question": "q?"}]
    path = write_jsonl(image_folder / "rows.jsonl", rows)

    report = records_import(project=project, path=path, import_run=run)

    # Then every batch was written by the writer thread, all of it committed, progress final
    assert len(writers) == 6 and all(name.startswith(THREAD_NAME) for name in writers)
    assert (report.created, report.rejected) == (55, 1)
    assert SourceRecord.objects.filter(project=project).count() == 55
    stored = ImportRun.objects.get(pk=run.pk)
    assert (stored.rows_done, stored.created, stored.rejected) == (56, 55, 1)
    assert not writer_threads()


@pytest.mark.django_db(transaction=True)
def test_records_import_a_failed_batch_write_stops_the_import_and_keeps_earlier_batches(
    project, image_folder, monkeypatch, small_batches_written_behind
):
    calls = []
    real_write = importer.Importer._write

    def write(self, batch, **kwargs):
        calls.append(len(batch))
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real_write(self, batch, **kwargs)

    monkeypatch.setattr(importer.Importer, "_write", write)
    path = write_jsonl(image_folder / "rows.jsonl", [demo_row(i) for i in range(60)])

    with pytest.raises(RuntimeError, match="disk full"):
        records_import(project=project, path=path)

    # Then the two batches before it are whole, nothing after it was written, no thread is left
    ids = set(SourceRecord.objects.filter(project=project).values_list("external_id", flat=True))
    assert ids == {f"r{i}" for i in range(20)}
    assert len(calls) == 3
    assert not writer_threads()
