"""Helpers building real source records (from the demo data) and candidates over them."""

import json

import pytest

from medmax_review.core.medmax import IMAGE_BEFORE_INSTRUCTION, VQA
from medmax_review.review.candidates import CandidateSpec, candidates_create
from medmax_review.scoring.scorers.base import ScoreInput
from medmax_review.sources.images import image_store
from medmax_review.sources.models import SourceRecord

DEMO_FILES = ("vqa_rad.jsonl", "slake.jsonl", "skimage.jsonl")


def _load_rows(demo_data) -> dict[str, dict]:
    rows = {}
    for name in DEMO_FILES:
        for line in (demo_data / name).read_text().splitlines():
            row = json.loads(line)
            rows[row["id"]] = row
    return rows


@pytest.fixture
def demo_rows(demo_data) -> dict[str, dict]:
    """Every demo row by id ("vqarad-1582", "slake-4114", "skimage-retina", ...)."""
    return _load_rows(demo_data)


def item_for(row: dict, *, response: str, instruction: str | None = None, task: str = VQA,
             image_position: str = IMAGE_BEFORE_INSTRUCTION) -> ScoreInput:
    """A scorer input for a candidate over a real demo row."""
    return ScoreInput(
        instruction=row.get("question", "Describe the image.") if instruction is None else instruction,
        response=response, task=task, image_position=image_position,
        caption=row.get("caption", ""), question=row.get("question", ""),
        answer=row.get("answer", ""), modality=row.get("meta", {}).get("modality", ""),
        has_image=True,
    )


@pytest.fixture
def make_record(project, demo_data):
    def make(row: dict, *, image_bytes: bytes | None = None, external_id: str | None = None):
        data = image_bytes if image_bytes is not None else (demo_data / row["image"]).read_bytes()
        meta = row.get("meta", {})
        return SourceRecord.objects.create(
            project=project, source=row["id"].split("-")[0], external_id=external_id or row["id"],
            license=row["license"], image=image_store(data=data),
            modality=meta.get("modality", ""), caption=row.get("caption", ""),
            question=row.get("question", ""), answer=row.get("answer", ""), meta=meta,
        )
    return make


@pytest.fixture
def make_candidate(project):
    def make(record, *, response: str, instruction: str | None = None, task: str = VQA,
             sample_index: int = 0, image_position: str = IMAGE_BEFORE_INSTRUCTION):
        spec = CandidateSpec(
            record_id=record.id, task=task,
            instruction=record.question if instruction is None else instruction,
            response=response, image_position=image_position, sample_index=sample_index,
            template_ref="test",
        )
        (candidate,) = candidates_create(project=project, specs=[spec])
        return candidate
    return make
