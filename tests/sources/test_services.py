import csv
import io
import json
import threading
import time
import zipfile

from django.db import connection, transaction
from PIL import Image

from medmax_review.review.models import APPROVED, PENDING, Candidate, Decision
from medmax_review.sources import image_files
from medmax_review.sources.images import image_store
from medmax_review.sources.models import ImageAsset, SourceRecord
from medmax_review.sources.services import records_import
from tests.sources.conftest import demo_row, png_bytes, write_jsonl


def test_records_import_vqa_rad_demo(project, demo_data):
    report = records_import(project=project, path=demo_data / "vqa_rad.jsonl")

    assert report.errors == []
    assert report.created == 150
    records = SourceRecord.objects.filter(project=project)
    assert records.count() == 150
    assert ImageAsset.objects.count() == 75
    record = records.get(external_id="vqarad-2156")
    assert record.source == "vqa_rad"
    assert record.meta["source_citation"].startswith("VQA-RAD")
    assert record.license == "CC0-1.0"
    assert record.question == "Is this an infectious process?"
    assert record.image.format == "jpeg"
    assert image_files.read(record.image.file) == (
        demo_data / "vqa_rad/images/synpic35191.jpg"
    ).read_bytes()
    # Integer answers in the source arrive as text and keep their flag.
    counted = records.get(external_id="vqarad-2234")
    assert counted.answer == "12"
    assert counted.meta["answer_raw_type"] == "int"


def test_records_import_slake_keeps_chinese_rows(project, demo_data):
    report = records_import(project=project, path=demo_data / "slake.jsonl")

    assert report.errors == []
    assert report.created == 137
    chinese = SourceRecord.objects.filter(project=project, language="zh")
    assert chinese.count() == 5
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese.first().question)
    assert SourceRecord.objects.filter(modality="CT").exists()


def test_records_import_skimage_captions(project, demo_data):
    report = records_import(project=project, path=demo_data / "skimage.jsonl")

    assert report.errors == []
    assert report.created == 4
    retina = SourceRecord.objects.get(external_id="skimage-retina")
    assert retina.caption.startswith("Human retina.")
    assert (retina.image.width, retina.image.height) == (1411, 1411)
    assert {a.format for a in ImageAsset.objects.all()} == {"png", "jpeg"}


def test_records_import_twice_makes_no_duplicates(project, demo_data):
    first = records_import(project=project, path=demo_data / "skimage.jsonl")
    second = records_import(project=project, path=demo_data / "skimage.jsonl")

    assert (first.created, first.duplicates) == (4, 0)
    assert (second.created, second.duplicates) == (0, 4)
    assert SourceRecord.objects.count() == 4
    assert ImageAsset.objects.count() == 4


def test_records_import_csv(project, image_folder):
    path = image_folder / "rows.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "image", "caption", "source", "license", "meta", "stain"])
        writer.writerow(["c1", "img/0.png", "A cell, with a comma", "cells", "CC-BY-4.0", '{"k": 1}', "H&E"])
        writer.writerow(["c2", "img/1.png", "Line one\nline two", "cells", "", "", ""])

    report = records_import(project=project, path=path)

    assert report.errors == []
    assert report.created == 2
    c1 = SourceRecord.objects.get(external_id="c1")
    assert c1.caption == "A cell, with a comma"
    assert c1.meta == {"k": 1, "stain": "H&E"}
    assert SourceRecord.objects.get(external_id="c2").caption == "Line one\nline two"


def test_records_import_zip_with_images(project, tmp_path):
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("set/rows.jsonl", "\n".join(
            json.dumps(demo_row(i)) for i in range(3)
        ))
        for i in range(3):
            zf.writestr(f"set/img/{i}.png", png_bytes(color=10 + i))

    report = records_import(project=project, path=bundle)

    assert report.errors == []
    assert report.created == 3
    assert ImageAsset.objects.count() == 3
    assert all(image_files.exists(a.file) for a in ImageAsset.objects.all())


def test_records_import_images_dir_option(project, image_folder, tmp_path):
    data = write_jsonl(tmp_path / "elsewhere.jsonl", [demo_row(1)])

    without = records_import(project=project, path=data)
    with_dir = records_import(project=project, path=data, images_dir=image_folder)

    assert without.created == 0
    assert "image file not found" in without.errors[0].message
    assert with_dir.created == 1


MEDMAX_ROWS = [
    {"text": "<image>Is there a fracture?<reserved08706>No.", "image_path": "img/0.png",
     "task": "vqa", "source": "vqa_rad", "credential": "no"},
    {"text": "Describe a chest CT with a nodule.<reserved08706>A chest CT showing a nodule.<image>",
     "image_path": "img/1.png", "task": "image_generation", "source": "pmc_oa", "credential": "no"},
    {"text": "<image>Write the report.<reserved08706>No acute findings.", "image_path": "",
     "task": "report_understanding", "source": "mimic_cxr", "credential": "yes"},
]


def test_records_import_medmax_creates_pending_candidates(project, image_folder):
    path = write_jsonl(image_folder / "medmax.jsonl", MEDMAX_ROWS)

    report = records_import(project=project, path=path)

    assert report.errors == []
    assert (report.created, report.candidates_created) == (3, 3)
    vqa = Candidate.objects.get(task="vqa")
    assert (vqa.instruction, vqa.response, vqa.image_position) == (
        "Is there a fracture?", "No.", "before_instruction"
    )
    assert vqa.template_ref == "import"
    assert vqa.status == PENDING
    assert vqa.record.question == "Is there a fracture?"
    report_row = Candidate.objects.get(task="report_understanding")
    assert report_row.credential is True
    assert report_row.record.image is None
    assert Candidate.objects.get(task="image_generation").image_position == "in_response"
    assert not Decision.objects.exists()
    # Without an id, the external id is a hash of the row: stable on re-import.
    again = records_import(project=project, path=path)
    assert (again.created, again.duplicates, again.candidates_created) == (0, 3, 0)


def test_records_import_medmax_approved(project, image_folder):
    path = write_jsonl(image_folder / "published.jsonl", MEDMAX_ROWS)

    report = records_import(project=project, path=path, approved=True)

    assert report.candidates_created == 3
    assert set(Candidate.objects.values_list("status", flat=True)) == {APPROVED}
    notes = set(Decision.objects.values_list("system_note", flat=True))
    assert len(notes) == 1 and "published.jsonl" in notes.pop()


def test_records_import_zip_with_rows_and_dicom(project, demo_data, tmp_path):
    bundle = tmp_path / "mixed.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("rows.jsonl", json.dumps(demo_row(0)))
        zf.writestr("img/0.png", png_bytes(color=3))
        zf.write(demo_data / "dicom" / "MR_small.dcm", "scans/mr.dcm")

    report = records_import(project=project, path=bundle)

    assert report.errors == []
    assert set(SourceRecord.objects.values_list("source", flat=True)) == {"test_set", "dicom"}


def test_records_import_concurrent_same_rows_counts_duplicates(
    transactional_db, project, image_folder
):
    """Another import commits the same record while this one writes: no failure, a duplicate."""
    path = write_jsonl(image_folder / "rows.jsonl", [demo_row(1), demo_row(2)])
    inserted = threading.Event()

    def other_import():
        with transaction.atomic():
            SourceRecord.objects.create(project=project, source="test_set", external_id="r2")
            inserted.set()
            time.sleep(1.0)  # hold the row uncommitted while the main import reaches it
        connection.close()

    thread = threading.Thread(target=other_import)
    thread.start()
    inserted.wait(5)
    report = records_import(project=project, path=path)
    thread.join()

    assert report.errors == []
    assert (report.created, report.duplicates) == (1, 1)
    assert SourceRecord.objects.filter(project=project).count() == 2


def test_records_import_medmax_second_task_on_known_record(project, image_folder):
    first = {"id": "case-1", "text": "<image>Is it normal?<reserved08706>Yes.",
             "image_path": "img/0.png", "task": "vqa", "source": "set", "credential": "no"}
    second = {**first, "text": "<image>Describe the image.<reserved08706>A normal film.",
              "task": "image_captioning"}
    path = write_jsonl(image_folder / "two_tasks.jsonl", [first, second])

    report = records_import(project=project, path=path)

    assert (report.created, report.duplicates, report.candidates_created) == (1, 1, 2)
    record = SourceRecord.objects.get()
    assert set(record.candidates.values_list("task", flat=True)) == {"vqa", "image_captioning"}


def test_records_import_csv_reports_the_starting_line(project, image_folder):
    path = image_folder / "rows.csv"
    path.write_text(
        "id,image,question,answer,source\n"
        'a,img/0.png,"A question\nover two lines?",yes,s\n'
        "b,img/1.png,No answer here?,,s\n"
        "c,img/2.png,Too,many,s,fields\n",
        encoding="utf-8",
    )

    report = records_import(project=project, path=path)

    assert report.created == 1
    assert [(e.line, e.field) for e in report.errors] == [(4, "answer"), (5, "")]
    assert report.errors[1].message == "row has 6 fields, header has 5"


def test_image_store_accepts_mpo_as_jpeg(db):
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(
        out, format="MPO", save_all=True, append_images=[Image.new("RGB", (16, 16), "blue")]
    )

    asset = image_store(data=out.getvalue())

    assert asset.format == "jpeg" and asset.file.endswith(".jpg")
    assert image_store(data=out.getvalue()).pk == asset.pk
