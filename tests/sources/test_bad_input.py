"""Every kind of bad input rejects only its own row, with file, line and field in the report."""

import hashlib
import io
import json
import stat
import zipfile

import pytest
from PIL import Image

from medmax_review.sources.models import ImageAsset, SourceRecord
from medmax_review.sources.services import records_import
from tests.sources.conftest import demo_row, png_bytes, write_jsonl


def _errors_by_line(report):
    return {e.line: e for e in report.errors}


def test_records_import_reports_bad_rows_and_keeps_good_ones(project, image_folder):
    path = write_jsonl(image_folder / "mixed.jsonl", [
        demo_row(1),
        '{"id": "broken", "image": ',
        {k: v for k, v in demo_row(3).items() if k != "image"},
        demo_row(4, image="img/nope.png"),
        demo_row(5, credential="maybe"),
        {"id": "r6", "image": "img/0.png", "source": "test_set"},
        "[1, 2]",
        demo_row(8),
    ])

    report = records_import(project=project, path=path)

    assert report.created == 2
    assert set(SourceRecord.objects.values_list("external_id", flat=True)) == {"r1", "r8"}
    errors = _errors_by_line(report)
    assert set(errors) == {2, 3, 4, 5, 6, 7}
    assert all(e.file == "mixed.jsonl" for e in report.errors)
    assert errors[2].message.startswith("bad JSON")
    assert (errors[3].field, errors[3].message) == ("image", "missing field: image")
    assert errors[4].field == "image" and "not found: img/nope.png" in errors[4].message
    assert errors[5].field == "credential" and "'maybe'" in errors[5].message
    assert "missing field" in errors[6].message
    assert "expected a JSON object" in errors[7].message


def test_records_import_rejects_corrupt_image(project, image_folder):
    (image_folder / "img" / "bad.png").write_bytes(png_bytes()[:40])
    (image_folder / "img" / "text.png").write_bytes(b"not an image at all")
    path = write_jsonl(image_folder / "rows.jsonl", [
        demo_row(1, image="img/bad.png"), demo_row(2, image="img/text.png"), demo_row(3)
    ])

    report = records_import(project=project, path=path)

    assert report.created == 1
    errors = _errors_by_line(report)
    assert "not a readable image" in errors[1].message
    assert "not a readable image" in errors[2].message
    assert ImageAsset.objects.count() == 1


def test_records_import_rejects_oversized_image(project, image_folder, settings):
    big = png_bytes(size=(64, 64), mode="RGB")
    (image_folder / "img" / "big.png").write_bytes(big)
    settings.MEDMAX_MAX_IMAGE_BYTES = len(big) - 1
    path = write_jsonl(image_folder / "rows.jsonl", [demo_row(1, image="img/big.png"), demo_row(2)])

    report = records_import(project=project, path=path)

    assert report.created == 1
    assert f"over the limit of {len(big) - 1} bytes" in report.errors[0].message
    assert report.errors[0].line == 1


@pytest.mark.parametrize("size", [(1200, 1000), (3000, 3000)])  # Pillow's warning, then its error
def test_records_import_rejects_decompression_bomb(project, image_folder, settings, size):
    settings.MEDMAX_MAX_IMAGE_PIXELS = 1_000_000
    out = io.BytesIO()
    Image.new("1", size).save(out, format="PNG")
    assert len(out.getvalue()) < 10_000  # a small file that decodes to millions of pixels
    (image_folder / "img" / "bomb.png").write_bytes(out.getvalue())
    path = write_jsonl(image_folder / "rows.jsonl", [demo_row(1, image="img/bomb.png"), demo_row(2)])

    report = records_import(project=project, path=path)

    assert report.created == 1
    assert "decompression bomb" in report.errors[0].message


def test_records_import_rejects_path_traversal(project, image_folder, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes(color=200))
    path = write_jsonl(image_folder / "rows.jsonl", [
        demo_row(1, image="../secret.png"),
        demo_row(2, image=str(secret)),
        demo_row(3, image="img/../../secret.png"),
        demo_row(4),
    ])

    report = records_import(project=project, path=path)

    assert report.created == 1
    errors = _errors_by_line(report)
    assert set(errors) == {1, 2, 3}
    assert "escapes the images folder" in errors[1].message
    assert "must be relative" in errors[2].message
    assert "escapes the images folder" in errors[3].message
    secret_sha = hashlib.sha256(secret.read_bytes()).hexdigest()
    assert not ImageAsset.objects.filter(sha256=secret_sha).exists()


def test_records_import_rejects_zip_slip_and_symlinks(project, tmp_path):
    bundle = tmp_path / "evil.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("rows.jsonl", "\n".join(json.dumps(demo_row(i)) for i in range(3)))
        zf.writestr("img/0.png", png_bytes(color=1))
        zf.writestr("img/1.png", png_bytes(color=2))
        zf.writestr("../escaped.png", png_bytes(color=3))
        zf.writestr("/abs.png", png_bytes(color=4))
        link = zipfile.ZipInfo("img/2.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")

    report = records_import(project=project, path=bundle)

    assert report.created == 2  # rows 0 and 1; row 2's image was the refused symlink
    entries = {e.file: e for e in report.errors if e.field == "zip entry"}
    assert set(entries) == {"evil.zip:../escaped.png", "evil.zip:/abs.png", "evil.zip:img/2.png"}
    assert "symbolic link" in entries["evil.zip:img/2.png"].message
    assert not (tmp_path / "escaped.png").exists()
    row_error = next(e for e in report.errors if e.field == "image")
    assert (row_error.file, row_error.line) == ("evil.zip:rows.jsonl", 3)


def test_records_import_medmax_bad_rows(project, image_folder):
    path = write_jsonl(image_folder / "medmax.jsonl", [
        {"text": "<image>Q?<reserved08706>A.", "image_path": "img/0.png", "task": "vqa",
         "source": "s", "credential": "no"},
        {"text": "<image>Q?<reserved08706>A.", "image_path": "img/0.png", "task": "diagnosis",
         "source": "s", "credential": "no"},
        {"text": "<image>Q? A.", "image_path": "img/1.png", "task": "vqa", "source": "s",
         "credential": "no"},
        {"text": "<image>Q?<reserved08706>A.", "image_path": "img/1.png", "task": "vqa",
         "source": "s", "credential": "sometimes"},
        {"text": "<image>Q?<reserved08706>A.", "task": "vqa", "source": "s", "credential": "no"},
    ])

    report = records_import(project=project, path=path)

    assert (report.created, report.candidates_created) == (1, 1)
    errors = _errors_by_line(report)
    assert errors[2].field == "task" and "unknown task 'diagnosis'" in errors[2].message
    assert errors[3].field == "text" and "separator" in errors[3].message
    assert errors[4].field == "credential"
    assert errors[5].field == "image_path" and "missing field" in errors[5].message


def test_records_import_strict_imports_nothing(project, image_folder):
    path = write_jsonl(image_folder / "rows.jsonl", [demo_row(1), demo_row(2, image="img/x.png")])

    report = records_import(project=project, path=path, strict=True)

    assert report.rolled_back
    assert report.created == 0
    assert len(report.errors) == 1
    assert not SourceRecord.objects.exists()
    assert not ImageAsset.objects.exists()


def test_records_import_strict_clean_file_imports(project, image_folder):
    path = write_jsonl(image_folder / "rows.jsonl", [demo_row(1), demo_row(2)])

    report = records_import(project=project, path=path, strict=True)

    assert not report.rolled_back
    assert report.created == SourceRecord.objects.count() == 2


def test_lines_the_fast_parser_refuses_are_read_as_json_reads_them(project, image_folder):
    # A byte order mark, NaN and an integer past 64 bits are JSON that Python's json reads
    # (NaN kept as null: PostgreSQL's JSON has no NaN); invalid UTF-8 and broken JSON are
    # still named in the report's words.
    path = image_folder / "edges.jsonl"
    rows = [json.dumps(demo_row(1)).encode(),
            json.dumps({**demo_row(2), "score": float("nan"),
                        "meta": {"inf": float("inf")}}).encode(),
            json.dumps({**demo_row(3), "big": 2**70}).encode(),
            b'{"id": "r4", "caption": "\xff\xfe"}',
            b'{"id": "r5", "caption": }']
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(rows) + b"\n")

    report = records_import(project=project, path=path)

    assert set(SourceRecord.objects.values_list("external_id", flat=True)) == {"r1", "r2", "r3"}
    assert SourceRecord.objects.get(external_id="r3").meta["big"] == 2**70
    assert SourceRecord.objects.get(external_id="r2").meta["inf"] is None
    errors = _errors_by_line(report)
    assert set(errors) == {4, 5}
    assert errors[4].message.startswith("line is not UTF-8")
    assert errors[5].message.startswith("bad JSON: Expecting value at column")
