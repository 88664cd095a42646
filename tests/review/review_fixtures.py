"""Fixtures for the review workspace: real images from the demo data and candidates with slots.

Test modules import what they use from here (tests/review holds other suites too).
"""

import hashlib
from pathlib import Path

import pytest
from django.conf import settings

from medmax_review.review.candidates import CandidateSpec, candidates_create
from medmax_review.review.models import Candidate, ReviewSlot
from medmax_review.sources.models import ImageAsset, SourceRecord

DEMO_IMAGE = Path(__file__).resolve().parents[2] / "demo_data" / "vqa_rad" / "images" / "synpic35191.jpg"


def image_asset_create(path: Path = DEMO_IMAGE, dicom: dict | None = None) -> ImageAsset:
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    relative = f"images/{sha[:2]}/{sha}.jpg"
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    from PIL import Image

    with Image.open(path) as im:
        width, height = im.size
    asset, _ = ImageAsset.objects.get_or_create(
        sha256=sha,
        defaults=dict(file=relative, format="jpeg", width=width, height=height,
                      size_bytes=len(data), modality="CT", dicom=dicom or {}),
    )
    return asset


def candidates_make(project, n=1, *, credential=False, priorities=None, response="The left lung is clear.",
                    scores=None, image=None) -> list[Candidate]:
    """n candidates (one record each), with their review slots, in priority order given."""
    specs = []
    start = SourceRecord.objects.count()
    for i in range(n):
        record = SourceRecord.objects.create(
            project=project, source="vqa_rad", external_id=f"rec-{start + i}", license="CC0-1.0",
            credential="yes" if credential else "no", image=image, modality="CT",
            question="Which lung has an opacity?", answer="Right",
        )
        specs.append(CandidateSpec(
            record_id=record.pk, task="vqa", instruction="Which lung has an opacity?",
            response=response, image_position="before_instruction", credential=credential,
            provenance={"backend": "template", "model": "SmolLM2-135M"},
        ))
    created = candidates_create(project=project, specs=specs)
    for i, c in enumerate(created):
        priority = priorities[i] if priorities else 0.0
        updates = {"priority": priority}
        if scores is not None:
            updates["scores"] = scores
        Candidate.objects.filter(pk=c.pk).update(**updates)
        ReviewSlot.objects.filter(candidate=c).update(priority=priority)
        c.refresh_from_db()
    return created


@pytest.fixture
def image(db):
    return image_asset_create()


@pytest.fixture
def make_candidates(project, image):
    def make(n=1, **kwargs):
        kwargs.setdefault("image", image)
        return candidates_make(project, n, **kwargs)

    return make


@pytest.fixture
def two_reviews(project):
    project.reviews_required = 2
    project.save(update_fields=["reviews_required"])
    return project
