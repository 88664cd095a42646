"""Export fixtures: approved candidates built from the real demo data."""

import hashlib
import json
from pathlib import Path

import pytest

from medmax_review.core import medmax
from medmax_review.exports import services
from medmax_review.review.candidates import CandidateSpec, candidates_create
from medmax_review.sources.images import image_store
from medmax_review.sources.models import SourceRecord
from medmax_review.sources.services import records_import
from tests.conftest import PASSWORD


def approve_records(project, records, *, task=medmax.VQA) -> list:
    """One approved candidate per record: the source question and answer, unchanged. A record
    with no image (and no credentialed one held at its source) gets a text-only candidate."""
    specs = []
    for r in records:
        if task == medmax.IMAGE_GENERATION:
            position = medmax.IMAGE_IN_RESPONSE
        elif r.image_id or r.credential == "yes":
            position = medmax.IMAGE_BEFORE_INSTRUCTION
        else:
            position = medmax.IMAGE_NONE
        if task == medmax.IMAGE_GENERATION:
            instruction, response = f"Generate an image showing: {r.answer}", ""
        else:
            instruction, response = r.question, r.answer
        specs.append(CandidateSpec(
            record_id=r.pk, task=task, instruction=instruction, response=response,
            image_position=position, credential=r.credential == "yes",
            provenance={"model": "SmolLM2-135M-Instruct"}, template_ref=f"{task}/default@v2",
            template_version=2,
        ))
    return candidates_create(project=project, specs=specs, approved_note="approved for the test")


@pytest.fixture
def vqa_rad(project, demo_data):
    """The VQA-RAD demo file imported, each question approved as a VQA candidate."""
    report = records_import(project=project, path=demo_data / "vqa_rad.jsonl")
    assert report.created == 150, report.summary()
    records = list(SourceRecord.objects.filter(project=project).order_by("id"))
    approve_records(project, records)
    return records


REPORTS = [
    ("Summarise the findings of this chest radiograph report: Heart size is normal. The lungs"
     " are clear. No pleural effusion or pneumothorax.", "No acute cardiopulmonary process."),
    ("Summarise the findings of this chest radiograph report: Patchy opacity in the right lower"
     " lobe. Small right pleural effusion.", "Right lower lobe pneumonia with a small effusion."),
    ("Summarise the findings of this chest radiograph report: Interval placement of a right"
     " internal jugular catheter, tip in the superior vena cava.", "Line in good position."),
]


@pytest.fixture
def mixed(project, demo_data):
    """A project mixing rows with and without an image file: VQA-RAD and SLAKE questions with
    their images (and four image-generation rows), credentialed report questions whose image
    stays at its source, and text-only report summaries of a source we know nothing about."""
    for name in ("vqa_rad.jsonl", "slake.jsonl"):
        report = records_import(project=project, path=demo_data / name)
        assert report.errors == [], report.summary()
    records = SourceRecord.objects.filter(project=project).order_by("id")
    vqa_rad = list(records.filter(source="vqa_rad")[:24])
    slake = list(records.filter(source="slake")[:24])
    approve_records(project, vqa_rad + slake)
    approve_records(project, vqa_rad[:4], task=medmax.IMAGE_GENERATION)
    asset = store_demo_image(demo_data, "skimage/images/cell.png")  # in no other row
    credentialed = [
        SourceRecord.objects.create(
            project=project, source="mimic_cxr", external_id=f"cxr-{i}", credential="yes",
            image=asset, question=question, answer=answer,
            license="PhysioNet Credentialed Health Data License 1.5.0",
        )
        for i, (question, answer) in enumerate(REPORTS)
    ]
    approve_records(project, credentialed, task=medmax.REPORT_UNDERSTANDING)
    text_only = [
        SourceRecord.objects.create(
            project=project, source="ward_reports", external_id=f"report-{i}",
            question=question, answer=answer, report=question, license="CC-BY-NC-4.0",
        )
        for i, (question, answer) in enumerate(REPORTS)
    ]
    approve_records(project, text_only, task=medmax.REPORT_UNDERSTANDING)
    return {"vqa_rad": vqa_rad, "slake": slake, "credentialed": credentialed,
            "text_only": text_only, "rows": 48 + 4 + 3 + 3}


def export(project, tmp_path=None, **options):
    """Create and build one version; returns (version, folder)."""
    version = services.dataset_version_create(
        project=project, options=options, out_dir=tmp_path
    )
    version = services.dataset_version_build(version_id=version.pk)
    assert version.status == "done", version.error
    return version, services.dataset_version_folder(version)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def data_files(folder: Path) -> dict[str, str]:
    """sha256 of every file but those that describe the version among the others (the
    manifest names it, the changelog and its row index compare it with the previous one), by
    relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in VERSION_FILES
    }


VERSION_FILES = {"manifest.json", "CHANGELOG.md", "rows.tsv"}


def store_demo_image(demo_data: Path, name: str):
    return image_store(data=(demo_data / name).read_bytes())


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client
