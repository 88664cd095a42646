"""A published MedMax JSONL file, re-imported as approved and exported, comes back unchanged."""

import hashlib
import json

from django.core.management import call_command

from medmax_review.review.models import APPROVED, Candidate


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _published_file(tmp_path, demo_data):
    """A MedMax-format file in the shape MedMax publishes, with images beside it: tasks spelled
    as the file likes, a credentialed row with an empty image_path, a text-only row with none."""
    images = tmp_path / "published" / "images"
    images.mkdir(parents=True)
    rows = []
    for name, text, task in [
        ("synpic35191.jpg", "<image>Is this an infectious process?<reserved08706>Maybe", "VQA"),
        ("synpic16221.jpg", "<image>Describe the image.<reserved08706>An axial CT of the abdomen.",
         "image_captioning"),
        ("synpic35191.jpg", "Generate a head MRI of an infectious process.<reserved08706><image>",
         "Image Generation"),
    ]:
        (images / name).write_bytes((demo_data / "vqa_rad" / "images" / name).read_bytes())
        rows.append({"text": text, "image_path": f"images/{name}", "task": task,
                     "source": "vqa_rad", "credential": "no"})
    # Credentialed rows are published without image bytes or a path.
    rows.append({"text": "<image>Findings?<reserved08706>No acute cardiopulmonary process.",
                 "image_path": "", "task": "Report Understanding", "source": "mimic_cxr",
                 "credential": "yes"})
    rows.append({"text": "Summarise: lungs clear, heart normal.<reserved08706>Normal study.",
                 "image_path": None, "task": "report_understanding", "source": "mimic_cxr",
                 "credential": "no"})
    path = tmp_path / "published" / "medmax.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


def _exported(folder):
    (jsonl,) = [p for p in folder.iterdir() if p.suffix == ".jsonl"]
    return jsonl, [json.loads(line) for line in jsonl.read_text().splitlines()]


def test_published_medmax_file_round_trips_through_approved_import_and_export(
    db, tmp_path, demo_data
):
    # given a MedMax JSONL file as published, with its images
    path, published = _published_file(tmp_path, demo_data)

    # when it is imported as already approved and exported as its source had it
    call_command("import_records", str(path), "--project", "rerelease", "--format", "medmax",
                 "--approved")
    assert set(Candidate.objects.values_list("status", flat=True)) == {APPROVED}
    assert Candidate.objects.count() == len(published)
    out = tmp_path / "out"
    call_command("export_dataset", "--project", "rerelease", "--out", str(out),
                 "--task-names", "source")

    # then every row is the same, key for key and in order, but for the image paths, which
    # name each image by its content hash; the image bytes are the same too
    _, exported = _exported(out / "v1")
    assert len(exported) == len(published)
    for before, after in zip(published, exported, strict=True):
        assert list(after) == list(before)
        assert {k: v for k, v in after.items() if k != "image_path"} == {
            k: v for k, v in before.items() if k != "image_path"
        }
        if before["image_path"]:
            assert _sha(path.parent / before["image_path"]) == _sha(out / "v1" / after["image_path"])
        else:
            # a published row's own "" or null comes back as it was
            assert after["image_path"] == before["image_path"]

    # and by default the tasks get their canonical names, and no image is null
    call_command("export_dataset", "--project", "rerelease", "--out", str(out))
    _, canonical = _exported(out / "v2")
    assert [r["task"] for r in canonical] == [
        "vqa", "image_captioning", "image_generation", "report_understanding",
        "report_understanding",
    ]
    assert [r["image_path"] for r in canonical[3:]] == [None, None]


def test_exported_medmax_file_round_trips_byte_for_byte(db, tmp_path, demo_data):
    # given the published file re-released once
    path, _ = _published_file(tmp_path, demo_data)
    call_command("import_records", str(path), "--project", "first", "--format", "medmax",
                 "--approved")
    call_command("export_dataset", "--project", "first", "--out", str(tmp_path / "one"),
                 "--task-names", "source")
    first, _ = _exported(tmp_path / "one" / "v1")
    # when that export is imported and exported again the same way
    call_command("import_records", str(first), "--project", "second", "--format", "medmax",
                 "--approved")
    call_command("export_dataset", "--project", "second", "--out", str(tmp_path / "two"),
                 "--task-names", "source")
    second, _ = _exported(tmp_path / "two" / "v1")
    # then the data file is byte-identical, and so is every image
    assert second.read_bytes() == first.read_bytes()
    one, two = tmp_path / "one" / "v1" / "images", tmp_path / "two" / "v1" / "images"
    assert sorted(p.name for p in one.iterdir()) == sorted(p.name for p in two.iterdir())
    assert all(_sha(p) == _sha(two / p.name) for p in one.iterdir())
