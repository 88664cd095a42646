import pytest
from django.core.management import CommandError, call_command

from medmax_review.projects.models import Project
from medmax_review.sources.models import ImportRun, SourceRecord
from medmax_review.sources.services import records_import
from tests.sources.conftest import demo_row, png_bytes, write_jsonl


def test_import_records_creates_project_and_prints_errors(db, image_folder, capsys):
    path = write_jsonl(image_folder / "rows.jsonl", [demo_row(1), demo_row(2, image="img/x.png")])

    call_command("import_records", str(path), "--project", "new-set")

    out, err = capsys.readouterr()
    project = Project.objects.get(slug="new-set")
    assert SourceRecord.objects.filter(project=project).count() == 1
    assert "1 records created" in out and "1 rejected" in out
    assert "rows.jsonl:2: image: image file not found: img/x.png" in err
    run = ImportRun.objects.get(project=project)
    assert (run.status, run.created, len(run.errors)) == ("done", 1, 1)


def test_import_records_strict_exits_non_zero(db, image_folder, capsys):
    path = write_jsonl(image_folder / "rows.jsonl", [demo_row(1), "{oops"])

    with pytest.raises(CommandError, match="strict mode imported nothing"):
        call_command("import_records", str(path), "--project", "strict-set", "--strict")

    assert "rows.jsonl:2" in capsys.readouterr().err
    assert not SourceRecord.objects.exists()


def test_import_records_images_option(db, image_folder, tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [demo_row(1)])

    call_command("import_records", str(path), "--project", "p", "--images", str(image_folder))

    assert SourceRecord.objects.get().image is not None


def test_records_import_batches_queries(project, tmp_path, django_assert_max_num_queries):
    folder = tmp_path / "many"
    (folder / "img").mkdir(parents=True)
    rows = []
    for i in range(100):
        (folder / "img" / f"{i}.png").write_bytes(png_bytes(size=(4, 4), color=i))
        rows.append(demo_row(i, image=f"img/{i}.png"))
    path = write_jsonl(folder / "rows.jsonl", rows)

    with django_assert_max_num_queries(15):
        report = records_import(project=project, path=path)

    assert report.created == 100
    assert SourceRecord.objects.exclude(image=None).count() == 100


def test_records_import_medmax_batches_queries(project, image_folder, django_assert_max_num_queries):
    rows = [
        {"text": f"<image>Question {i}?<reserved08706>Answer {i}.", "image_path": f"img/{i % 3}.png",
         "task": "vqa", "source": "bulk", "credential": "no"}
        for i in range(100)
    ]
    path = write_jsonl(image_folder / "medmax.jsonl", rows)

    with django_assert_max_num_queries(24):  # a constant: COPY takes its keys first, two per table
        report = records_import(project=project, path=path)

    assert (report.created, report.candidates_created) == (100, 100)
