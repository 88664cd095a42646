"""A published MedMax JSONL file, re-imported as approved and exported, comes back unchanged."""

import hashlib
import json

from django.core.management import call_command

from medmax_review.review.models import APPROVED, Candidate


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _published_file(tmp_path, demo_data):
    """A MedMax-format file in the shape MedMax publishes, with images beside it."""
    images = tmp_path / "published" / "images"
    images.mkdir(parents=True)
    rows = []
    for name, text, task in [
        ("synpic35191.jpg", "<image>Is this an infectious process?<reserved08706>Maybe", "vqa"),
        ("synpic16221.jpg", "<image>Describe the image.<reserved08706>An axial CT of the abdomen.",
         "image_captioning"),
        ("synpic35191.jpg", "Generate a head MRI of an infectious process.<reserved08706><image>",
         "image_generation"),
    ]:
        (images / name).write_bytes((demo_data / "vqa_rad" / "images" / name).read_bytes())
        rows.append({"text": text, "image_path": f"images/{name}", "task": task,
                     "source": "vqa_rad", "credential": "no"})
    # Credentialed rows are published without image bytes or a path.
    rows.append({"text": "<image>Findings?<reserved08706>No acute cardiopulmonary process.",
                 "image_path": "", "task": "report_understanding", "source": "mimic_cxr",
                 "credential": "yes"})
    path = tmp_path / "published" / "medmax.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, rows


def _exported_rows(out):
    (version,) = sorted(out.iterdir())
    (jsonl,) = [p for p in version.iterdir() if p.suffix == ".jsonl"]
    return version, [json.loads(line) for line in jsonl.read_text().splitlines()]


def test_published_medmax_file_round_trips_through_approved_import_and_export(
    db, tmp_path, demo_data
):
    # given a MedMax JSONL file as published, with its images
    path, published = _published_file(tmp_path, demo_data)

    # when it is imported as already approved and exported
    call_command("import_records", str(path), "--project", "rerelease", "--format", "medmax",
                 "--approved")
    assert set(Candidate.objects.values_list("status", flat=True)) == {APPROVED}
    out = tmp_path / "out"
    call_command("export_dataset", "--project", "rerelease", "--out", str(out))

    # then the records are the same, in order, and so are the image bytes
    version, exported = _exported_rows(out)
    key = ("text", "task", "source", "credential")
    assert [tuple(r[k] for k in key) for r in exported] == [tuple(r[k] for k in key) for r in published]
    for before, after in zip(published, exported, strict=True):
        if before["credential"] == "yes":
            assert after["image_path"] == ""
            continue
        assert _sha(path.parent / before["image_path"]) == _sha(version / after["image_path"])
