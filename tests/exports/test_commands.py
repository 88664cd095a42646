import io
import json

import pytest
from django.core.management import CommandError, call_command

from medmax_review.exports.models import DatasetVersion
from medmax_review.review.models import Candidate

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("export_dataset", *args, stdout=out)
    return out.getvalue()


def test_export_dataset_writes_version_folder_under_out(project, vqa_rad, tmp_path):
    # given one approved candidate with two separators (breaks the MedMax rule)
    bad = Candidate.objects.filter(project=project).order_by("id").last()
    Candidate.objects.filter(pk=bad.pk).update(response="yes<reserved08706>no")
    # when exported from the command line twice
    first = run("--project", "chest", "--out", str(tmp_path), "--split", "0.9,0.05,0.05",
                "--format", "chat", "--images", "archive", "--provenance")
    second = run("--project", "chest", "--out", str(tmp_path), "--exclude-license", "CC0-1.0")
    # then each version has its own folder, and the left-out row is reported
    assert f"v1: 149 rows written to {tmp_path / 'v1'}" in first
    assert "1 rows left out" in first and "text must contain exactly one" in first
    assert {p.name for p in (tmp_path / "v1").iterdir()} == {
        "train.jsonl", "validation.jsonl", "test.jsonl", "images.tar", "manifest.json",
        "README.md", "ATTRIBUTION.md", "CHANGELOG.md", "rows.tsv",
    }
    row = json.loads((tmp_path / "v1/train.jsonl").read_text().splitlines()[0])
    assert set(row) >= {"messages", "images", "candidate_id", "reviewers", "scores"}
    assert "v2: 0 rows written" in second
    manifest = json.loads((tmp_path / "v2/manifest.json").read_text())
    assert manifest["filters"]["exclude_licenses"] == ["CC0-1.0"]
    assert list(DatasetVersion.objects.order_by("number").values_list("number", "status")) == [
        (1, "done"), (2, "done")]


def test_export_dataset_names_the_bad_option(project):
    with pytest.raises(CommandError, match="split"):
        run("--project", "chest", "--split", "1,1,1")
    with pytest.raises(CommandError, match="--project: no project"):
        run("--project", "nope")
    with pytest.raises(CommandError, match="since"):
        run("--project", "chest", "--since", "31/01/2026")


def test_export_dataset_refuses_an_existing_folder(project, vqa_rad, tmp_path):
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "keep.txt").write_text("mine")
    with pytest.raises(CommandError, match="already exists"):
        run("--project", "chest", "--out", str(tmp_path))
    assert (tmp_path / "v1" / "keep.txt").read_text() == "mine"


def test_export_dataset_writes_each_trainer_format(project, vqa_rad, tmp_path):
    # when exported as LLaVA JSON with the imported task names, and as Parquet
    out = run("--project", "chest", "--out", str(tmp_path), "--format", "llava",
              "--split", "1,0,0", "--task-names", "source")
    run("--project", "chest", "--out", str(tmp_path), "--format", "parquet")
    # then each version has its format's files, and empty splits are reported, not written
    assert "no rows, so no file: validation, test" in out
    assert {p.name for p in (tmp_path / "v1").iterdir()} == {
        "train.json", "images", "manifest.json", "README.md", "ATTRIBUTION.md", "CHANGELOG.md",
        "rows.tsv",
    }
    assert [p.name for p in (tmp_path / "v2" / "data").iterdir()] == [
        "train-00000-of-00001.parquet"
    ]
    with pytest.raises(CommandError, match="^images: parquet"):
        run("--project", "chest", "--format", "parquet", "--images", "archive")
    with pytest.raises(CommandError, match="--task-names"):
        run("--project", "chest", "--task-names", "fancy")
