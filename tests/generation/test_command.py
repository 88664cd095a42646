from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from medmax_review.core import medmax
from medmax_review.generation.models import GenerationJob
from medmax_review.review.models import Candidate
from tests.generation.conftest import records_demo


def test_generate_command_wait_runs_and_prints_progress(transactional_db, project, demo_data):
    records_demo(project, demo_data, names=("vqa_rad.jsonl",))
    out = StringIO()
    call_command("generate", "--project", project.slug, "--task", medmax.VQA,
                 "--backend", "template", "--limit", "7", "--samples", "2", "--wait", stdout=out)
    job = GenerationJob.objects.get()
    assert job.status == GenerationJob.DONE and job.done == 14
    assert Candidate.objects.filter(job=job).count() == 14
    text = out.getvalue()
    assert f"job {job.pk}: 14 item(s) to generate" in text
    assert "[100%] 14 done, 0 failed of 14" in text


def test_generate_command_without_wait_enqueues(project, demo_records, django_capture_on_commit_callbacks):
    out = StringIO()
    with django_capture_on_commit_callbacks() as callbacks:
        call_command("generate", "--project", project.slug, "--task", medmax.IMAGE_CAPTIONING,
                     "--backend", "template", stdout=out)
    job = GenerationJob.objects.get()
    assert job.status == GenerationJob.PENDING and job.total == 4
    assert len(callbacks) == 1  # the run is sent to the broker after commit
    assert "queued" in out.getvalue()


def test_generate_command_names_bad_input(project, demo_records):
    with pytest.raises(CommandError, match="--project: no project"):
        call_command("generate", "--project", "nope", "--task", medmax.VQA, "--backend", "template")
    with pytest.raises(CommandError, match="^samples"):
        call_command("generate", "--project", project.slug, "--task", medmax.VQA,
                     "--backend", "template", "--samples", "99")
