"""Records with an image and no text (DICOM studies) reach review through a vision model; the
text-only backends skip them and say why."""

import base64

import pytest

from medmax_review.core import medmax
from medmax_review.generation import services
from medmax_review.generation.prompts import IMAGE_ONLY_NOTE
from medmax_review.review.models import Candidate
from medmax_review.sources.services import records_import


@pytest.fixture
def scans(project, demo_data):
    report = records_import(project=project, path=demo_data / "dicom")
    assert report.created == 2 and not report.errors
    return project.records.all()


@pytest.mark.parametrize("backend", ["template", "local"])
def test_text_only_backends_skip_image_only_records_and_say_why(project, scans, backend):
    job = services.job_create(project=project, task=medmax.IMAGE_CAPTIONING, backend=backend)

    assert job.record_ids == [] and job.skipped == 2
    assert "2 of them have an image and no text" in job.skip_note
    assert f"the {backend} backend reads text only" in job.skip_note


def test_vision_backend_writes_from_the_image_with_the_header_details(
    project, scans, stub_server, settings
):
    job = services.job_create(
        project=project, task=medmax.IMAGE_CAPTIONING, backend="openai", model="stub",
        base_url=stub_server.base_url, parameters={"vision": True},
    )
    assert sorted(job.record_ids) == sorted(scans.values_list("id", flat=True))

    services.job_run(job_id=job.pk)

    assert Candidate.objects.filter(job=job, record__in=scans).count() == 2
    by_modality = {}
    for body in stub_server.requests:
        parts = body["messages"][-1]["content"]
        text = next(p["text"] for p in parts if p["type"] == "text")
        image = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
        by_modality["CT" if "Modality: CT" in text else "MR"] = (text, image)
    ct_text, ct_image = by_modality["CT"]
    assert IMAGE_ONLY_NOTE in ct_text and "Image details: study: e+1" in ct_text
    ct = scans.get(modality="CT")
    assert base64.b64decode(ct_image.split(",", 1)[1]) == (
        settings.MEDIA_ROOT / ct.image.file).read_bytes()
    # The DICOM header's patient tags never reach the model.
    assert "CompressedSamples" not in ct_text and "Patient" not in ct_text
