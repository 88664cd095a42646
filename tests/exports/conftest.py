"""Export fixtures: approved candidates built from the real demo data."""

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
    """One approved candidate per record: the source question and answer, unchanged."""
    position = (
        medmax.IMAGE_IN_RESPONSE if task == medmax.IMAGE_GENERATION
        else medmax.IMAGE_BEFORE_INSTRUCTION
    )
    specs = []
    for r in records:
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


def export(project, tmp_path=None, **options):
    """Create and build one version; returns (version, folder)."""
    version = services.dataset_version_create(
        project=project, options=options, out_dir=tmp_path
    )
    version = services.dataset_version_build(version_id=version.pk)
    assert version.status == "done", version.error
    return version, services.dataset_version_folder(version)


def store_demo_image(demo_data: Path, name: str):
    return image_store(data=(demo_data / name).read_bytes())


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client
