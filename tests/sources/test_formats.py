"""Every reader on files in the field's own layouts, built from the real sample data, through
the command a user runs (`import_records --format auto`, `--map` where a layout needs it)."""

import hashlib
import json

import pytest
from django.core.management import CommandError, call_command

from medmax_review.core import medmax
from medmax_review.projects.models import ADMIN, Membership, Project
from medmax_review.projects.services import user_create
from medmax_review.review.models import APPROVED, PENDING, Candidate
from medmax_review.sources.models import ImageAsset, ImportRun, SourceRecord
from medmax_review.sources.readers import formats
from medmax_review.sources.readers.base import ITEM, RowError
from medmax_review.sources.services import records_import
from tests.conftest import DEMO_DATA
from tests.sources import real_datasets as real
from tests.sources.conftest import write_jsonl


def _import(path, *args, project="ds"):
    call_command("import_records", str(path), "--project", project, *args)
    return Project.objects.get(slug=project)


def _records(project):
    return SourceRecord.objects.filter(project=project)


def test_slake_original_json_array_imports_with_auto(db, tmp_path):
    path, items = real.slake_original(tmp_path)

    project = _import(path)

    records = _records(project)
    assert records.count() == len(items) == 137
    assert set(records.values_list("source", "license").distinct()) == {("slake", "CC-BY-4.0")}
    assert set(records.values_list("language", flat=True)) == {"en", "zh"}
    assert set(records.values_list("external_id", flat=True)) == {str(i["qid"]) for i in items}
    assert records.filter(image__isnull=True).count() == 0
    assert ImageAsset.objects.count() == len({i["img_name"] for i in items})
    zh = records.get(external_id=str(next(i["qid"] for i in items if i["q_lang"] == "zh")))
    assert zh.question == next(i["question"] for i in items if i["q_lang"] == "zh")


def test_slake_one_line_array_with_map(db, tmp_path):
    path, items = real.slake_original(tmp_path, pretty=False)

    project = _import(path, "--format", "json", "--map", "image=img_name", "lang=q_lang",
                      "--images", str(tmp_path / "imgs"))

    records = _records(project)
    assert records.count() == 137
    assert records.filter(language="zh").count() == sum(i["q_lang"] == "zh" for i in items)
    assert records.filter(modality="MRI").exists()


def test_vqa_rad_original_file_and_image_folder(db, tmp_path):
    path, items = real.vqa_rad_original(tmp_path)

    project = _import(path)

    records = _records(project)
    assert records.count() == 150
    assert set(records.values_list("source", "license").distinct()) == {("vqa_rad", "CC0-1.0")}
    numeric = [i for i in items if isinstance(i["answer"], int)]
    assert numeric, "the real file has numeric answers"
    for item in numeric:
        record = records.get(external_id=str(item["qid"]))
        assert record.answer == str(item["answer"])
        assert record.meta["answer_raw_type"] == "int"


def test_json_array_problems_name_the_item(db, project, tmp_path):
    good = real.rows("vqa_rad")[0]
    (tmp_path / "vqa_rad").mkdir()
    real._copy(good["image"], tmp_path / good["image"])
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([good, "not an object", {**good, "id": "b", "answer": ""}],
                               indent=2))

    report = records_import(project=project, path=path)

    assert report.created == 1
    assert [(e.unit, e.line) for e in report.errors] == [("item", 1), ("item", 2)]
    assert str(report.errors[0]).startswith("rows.json item 1: expected a JSON object")


def test_truncated_json_array_keeps_the_items_before_the_break(db, project, tmp_path):
    source = real.rows("vqa_rad")[:3]
    for row in source:
        real._copy(row["image"], tmp_path / row["image"])
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(source, indent=1)[:-40])

    report = records_import(project=project, path=path)

    assert report.created == 2
    assert report.rejected == 1 and "bad JSON" in report.errors[0].message


@pytest.mark.parametrize("jsonl", [False, True])
def test_llava_conversations_become_visual_chat_candidates(db, tmp_path, jsonl):
    path, expected = real.llava_conversations(tmp_path, jsonl=jsonl)

    project = _import(path)

    assert _records(project).count() == expected["records"] == 75
    candidates = Candidate.objects.filter(project=project)
    assert candidates.count() == expected["candidates"]
    assert set(candidates.values_list("task", "status").distinct()) == {(medmax.VISUAL_CHAT, PENDING)}
    item = json.loads(path.read_text().splitlines()[0]) if jsonl else json.loads(path.read_text())[0]
    turns = item["conversations"]
    first, second = Candidate.objects.filter(record__external_id=item["id"]).order_by("sample_index")[:2]
    assert first.instruction == turns[0]["value"].replace("<image>", "").strip()
    assert first.image_position == medmax.IMAGE_BEFORE_INSTRUCTION and first.context == ""
    assert first.provenance["image_token"] == {"turn": 0, "at": "start"}
    # A later turn keeps the earlier ones as its context.
    assert second.instruction == turns[2]["value"]
    assert turns[0]["value"].replace("<image>", "").strip() in second.context
    assert turns[1]["value"] in second.context


def test_llava_approved_and_multi_image_refused(db, tmp_path):
    path, _ = real.llava_conversations(tmp_path)
    items = json.loads(path.read_text())
    items[1]["image"] = [items[1]["image"], items[2]["image"] if isinstance(items[2]["image"], str)
                         else items[2]["image"][0]]
    path.write_text(json.dumps(items))

    project = _import(path, "--format", "llava", "--approved")

    assert _records(project).count() == 74
    assert set(Candidate.objects.values_list("status", flat=True)) == {APPROVED}
    run = ImportRun.objects.get(project=project)
    assert run.rejected == 1
    assert run.errors[0]["line"] == 1 and "at most one" in run.errors[0]["message"]


def test_parquet_shards_with_embedded_images(db, tmp_path):
    folder, count = real.parquet_dataset(tmp_path / "vqa-rad", shards=2)

    project = _import(folder)

    records = _records(project)
    assert records.count() == count
    assert records.filter(image__isnull=True).count() == 0
    originals = {hashlib.sha256((DEMO_DATA / r["image"]).read_bytes()).hexdigest()
                 for r in real.rows("vqa_rad")}
    assert set(ImageAsset.objects.values_list("sha256", flat=True)) == originals
    assert set(records.values_list("source", flat=True)) == {"train-00000-of-00002",
                                                            "train-00001-of-00002"}


def test_parquet_single_file_read_by_format_name(db, tmp_path):
    folder, count = real.parquet_dataset(tmp_path / "one", shards=1)
    shard = next((folder / "data").glob("*.parquet"))
    renamed = shard.with_suffix(".bin")  # the content, not the name, says Parquet
    shard.rename(renamed)

    auto = _import(renamed, project="auto")
    named = _import(renamed, "--format", "parquet", "--map", "id=question", project="named")

    assert _records(auto).count() == count
    # Questions repeat across images in VQA-RAD: as ids they make duplicates, not new records.
    questions = {r["question"] for r in real.rows("vqa_rad")}
    assert set(_records(named).values_list("external_id", flat=True)) == questions


def test_spreadsheet_csv_semicolons_bom_crlf(db, tmp_path):
    path, count = real.spreadsheet_csv(tmp_path)
    real._copy("slake/imgs/xmlab567/source.jpg", tmp_path / "slake/imgs/xmlab567/source.jpg")
    for row in real.rows("slake"):
        real._copy(row["image"], tmp_path / row["image"])

    project = _import(path, "--map", "image=Picture")

    records = _records(project)
    assert records.count() == count
    assert records.filter(language="zh").exists()
    assert records.first().meta.get("Organ")


def test_csv_header_that_does_not_fit_names_delimiter_and_columns(db, tmp_path, capsys):
    path = tmp_path / "sheet.csv"
    path.write_text("Foto;Frage;Antwort\r\na.jpg;Is it?;yes\r\n", encoding="utf-8-sig")

    with pytest.raises(CommandError, match="no row could be imported"):
        _import(path)

    err = capsys.readouterr().err
    assert "semicolon-separated" in err and "Foto, Frage, Antwort" in err
    assert not Project.objects.filter(slug="ds").exists()


def test_medmax_task_names_in_any_spelling(db, tmp_path):
    path, source = real.medmax_rows(tmp_path)

    project = _import(path, "--approved")

    candidates = Candidate.objects.filter(project=project)
    assert candidates.count() == len(source)
    assert set(candidates.values_list("task", flat=True)) == {
        medmax.VQA, medmax.VISUAL_CHAT, medmax.IMAGE_CAPTIONING, medmax.IMAGE_GENERATION,
        medmax.REPORT_UNDERSTANDING,
    }
    assert sorted(c.provenance["task_name"] for c in candidates) == sorted(r["task"] for r in source)


@pytest.mark.parametrize("name, task", [
    ("VQA", medmax.VQA), ("Visual Chat", medmax.VISUAL_CHAT),
    ("Image Captioning", medmax.IMAGE_CAPTIONING), ("image-generation", medmax.IMAGE_GENERATION),
    ("Report Understanding", medmax.REPORT_UNDERSTANDING), ("REPORT_UNDERSTANDING", medmax.REPORT_UNDERSTANDING),
    ("Multimodal Generation", medmax.MULTIMODAL_GENERATION),
    ("MedMax-Instruct", medmax.MULTIMODAL_GENERATION), ("  visual   question-answering ", medmax.VQA),
])
def test_task_from_name(name, task):
    assert medmax.task_from_name(name) == task


def test_medmax_unknown_task_refused_with_the_accepted_names(db, project, tmp_path):
    path, source = real.medmax_rows(tmp_path)
    lines = path.read_text().splitlines()
    bad = json.loads(lines[0]) | {"task": "Segmentation"}
    path.write_text("\n".join([json.dumps(bad), *lines[1:]]) + "\n")

    report = records_import(project=project, path=path)

    assert report.rejected == 1 and report.errors[0].line == 1
    message = report.errors[0].message
    assert "'Segmentation'" in message and "visual_chat" in message and "vqa (vqa/" in message


def test_command_fails_and_creates_no_project_when_every_row_is_refused(db, tmp_path, capsys):
    path = write_jsonl(tmp_path / "bad.jsonl", ['{"id": 1', {"id": "x"}, "[]"])

    with pytest.raises(CommandError, match="no row could be imported"):
        _import(path, project="empty")

    assert not Project.objects.filter(slug="empty").exists()
    assert not ImportRun.objects.exists()
    err = capsys.readouterr().err
    assert all(f"bad.jsonl:{n}:" in err for n in (1, 2, 3))


def test_command_lists_the_first_problems_and_counts_the_rest(db, tmp_path, capsys):
    good = real.rows("vqa_rad")[0]
    real._copy(good["image"], tmp_path / good["image"])
    path = write_jsonl(tmp_path / "many.jsonl", [good] + ['{"broken": '] * 1200)

    project = _import(path)

    err = capsys.readouterr().err.splitlines()
    assert len([e for e in err if e.startswith("many.jsonl:")]) == 50
    assert err[-1].startswith("... and 1150 more problems")
    run = ImportRun.objects.get(project=project)
    assert (run.rejected, run.problems, len(run.errors)) == (1200, 1200, 1000)


def test_problem_messages_stay_on_one_line():
    error = RowError("rows.json", 3, "image", "cannot decode\nTraceback (most recent call last):\n"
                     "  File x.py\n" + "word " * 200, ITEM)

    text = str(error)

    assert "\n" not in text and text.startswith("rows.json item 3: image: cannot decode Traceback")
    assert len(error.message) <= 300


def test_command_makes_the_only_superuser_admin_of_a_new_project(db, tmp_path, capsys):
    boss = user_create(username="boss", password="x" * 12, is_superuser=True, is_staff=True)
    path, _ = real.vqa_rad_original(tmp_path)

    project = _import(path)

    assert Membership.objects.get(project=project).user == boss
    assert Membership.objects.get(project=project).role == ADMIN
    assert "admin: boss" in capsys.readouterr().out


def test_command_admin_option(db, tmp_path):
    user_create(username="boss", password="x" * 12, is_superuser=True)
    user_create(username="boss2", password="x" * 12, is_superuser=True)
    dana = user_create(username="dana", password="x" * 12)
    path, _ = real.vqa_rad_original(tmp_path)

    project = _import(path, "--admin", "dana")

    assert list(Membership.objects.filter(project=project).values_list("user", "role")) == [
        (dana.pk, ADMIN)]
    with pytest.raises(CommandError, match="--admin: no user named 'nobody'"):
        _import(path, "--admin", "nobody", project="other")


def test_bad_map_is_refused_by_name(db, tmp_path, capsys):
    path, _ = real.slake_original(tmp_path)

    with pytest.raises(CommandError, match="unknown field 'picture'"):
        _import(path, "--map", "picture=img_name")
    with pytest.raises(CommandError, match="expected FIELD=COLUMN"):
        _import(path, "--map", "image")
    with pytest.raises(CommandError, match="no row could be imported"):
        _import(path, "--map", "image=img_file")
    assert "--map: no column 'img_file' in train.json (columns: img_id, img_name" in capsys.readouterr().err


def test_reports_folder_pairs_reports_with_studies(db, tmp_path):
    root, count = real.reports_folder(tmp_path)

    project = _import(root)

    records = _records(project)
    assert records.count() == count
    ct = records.get(external_id="p10/p10000032/s50414267")
    assert "IMPRESSION:  No acute abnormality." in ct.report
    assert ct.modality == "CT" and set(ct.image.dicom["presets"]) == {"lung", "bone", "soft", "brain"}
    assert records.get(external_id="fundus1").image.format == "jpeg"


def test_reports_with_an_unpaired_report(db, project, tmp_path):
    root, _ = real.reports_folder(tmp_path)
    (root / "orphan.txt").write_text("FINDINGS: none\n")

    report = records_import(project=project, path=root, fmt="reports")

    assert report.created == 3
    assert report.errors[0].file.endswith("orphan.txt") and "no image or DICOM" in report.errors[0].message


def test_jsonl_row_pointing_at_a_dicom_file(db, project, tmp_path):
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "ct.dcm").write_bytes((DEMO_DATA / "dicom" / "CT_small.dcm").read_bytes())
    path = write_jsonl(tmp_path / "rows.jsonl", [
        {"id": "ct-1", "image": "scans/ct.dcm", "report": "FINDINGS: normal.", "source": "site"},
        {"id": "ct-2", "image": "scans/ct.dcm", "source": "site"},  # image alone: DICOM says what it is
    ])

    report = records_import(project=project, path=path)

    assert (report.created, report.errors) == (2, [])
    record = SourceRecord.objects.get(external_id="ct-1")
    assert record.modality == "CT" and record.image.format == "png"
    assert "presets" in record.image.dicom and record.meta["dicom"]["rows"] == 128
    # The same file is not imported a second time as a DICOM record of its own.
    assert SourceRecord.objects.count() == 2


def test_auto_detects_from_content_not_the_name(db, tmp_path):
    source = real.rows("vqa_rad")[:4]
    for row in source:
        real._copy(row["image"], tmp_path / row["image"])
    array = tmp_path / "rows.jsonl"  # an array, whatever the name says
    array.write_text(json.dumps(source, indent=2))
    lines = tmp_path / "rows.json"
    lines.write_text("".join(json.dumps(r) + "\n" for r in source))

    assert formats.container_of(array) == formats.JSON
    assert formats.container_of(lines) == formats.JSONL
    assert _records(_import(array, project="a")).count() == 4
    assert _records(_import(lines, project="b")).count() == 4


def test_reports_csv_with_a_file_column(db, tmp_path):
    root, _ = real.reports_folder(tmp_path)
    reports = sorted(root.rglob("s*.txt"))
    path = tmp_path / "reports.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("study_id\tfile\treport\n")
        for report in reports:
            dcm = next(report.with_suffix("").glob("*.dcm")).relative_to(tmp_path)
            text = report.read_text().strip().replace("\n", " ")
            fh.write(f"{report.stem}\t{dcm}\t\"{text}\"\n")

    project = _import(path, "--format", "reports", "--map", "id=study_id")

    records = _records(project)
    assert records.count() == 2
    assert set(records.values_list("modality", flat=True)) == {"CT", "MR"}
    assert all("IMPRESSION" in r.report for r in records)


def test_parquet_export_imports_again_with_its_embedded_images(db, tmp_path):
    from medmax_review.exports import services as exports

    path, source = real.medmax_rows(tmp_path)
    first = _import(path, "--approved", project="published")
    version = exports.dataset_version_create(
        project=first, options={"format": "parquet"}, out_dir=tmp_path / "out")
    version = exports.dataset_version_build(version_id=version.pk)
    assert version.status == "done", version.error

    again = _import(exports.dataset_version_folder(version), "--approved", project="again")

    exported = version.manifest["rows"]
    assert exported >= len(source) - 1  # the export may leave out a row it cannot publish
    assert Candidate.objects.filter(project=again).count() == exported
    assert _records(again).filter(image__isnull=False).count() == _records(first).filter(
        image__isnull=False).count()
    assert set(_records(again).exclude(image=None).values_list("image__sha256", flat=True)) == set(
        _records(first).exclude(image=None).values_list("image__sha256", flat=True))
