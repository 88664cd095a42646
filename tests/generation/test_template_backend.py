import json

from medmax_review.core import medmax
from medmax_review.generation import services
from medmax_review.generation.backends import GenerationRequest
from medmax_review.generation.backends.template import CAPTION_REQUESTS, TemplateBackend
from medmax_review.generation.models import GenerationJob
from medmax_review.review.models import GENERATION_ERROR, PENDING, Candidate


def test_template_backend_vqa_uses_question_and_answer(demo_records):
    # given a VQA-RAD record
    record = demo_records.filter(source__icontains="vqa").exclude(question="").first()
    # when the template backend writes its pair
    job = services.job_create(project=record.project, task=medmax.VQA, backend="template",
                              filters={"limit": 3})
    services.job_run(job_id=job.pk)
    # then instruction is the question and response the answer, verbatim
    candidate = Candidate.objects.get(record=record, task=medmax.VQA)
    assert candidate.instruction == record.question
    assert candidate.response == record.answer
    assert candidate.status == PENDING
    assert candidate.template_ref == "vqa/medmax-template@v1"
    assert candidate.provenance["backend"] == "template"
    text = medmax.build_text(instruction=candidate.instruction, context="",
                             response=candidate.response, image_position=candidate.image_position)
    assert medmax.check_text(text, has_image=True) == []


def test_template_backend_captioning_is_deterministic(demo_records):
    record = demo_records.exclude(caption="").first()
    fields = {"caption": record.caption}
    request = GenerationRequest(messages=[], task=medmax.IMAGE_CAPTIONING, fields=fields)
    first = json.loads(TemplateBackend().generate(request).text)
    again = json.loads(TemplateBackend().generate(request).text)
    assert first == again
    assert first["instruction"] in CAPTION_REQUESTS
    assert first["response"] == record.caption


def test_template_backend_generation_puts_image_in_response(demo_records):
    project = demo_records.first().project
    job = services.job_create(project=project, task=medmax.IMAGE_GENERATION, backend="template")
    services.job_run(job_id=job.pk)
    job.refresh_from_db()
    captioned = demo_records.exclude(caption="").count()
    # only captioned records can feed image generation; the VQA ones are skipped with a reason
    assert job.total == captioned and job.done == captioned and job.failed == 0
    assert job.skipped == demo_records.count() - captioned
    assert "caption" in job.skip_note
    for candidate in Candidate.objects.filter(job=job):
        assert candidate.response == medmax.IMAGE
        assert candidate.image_position == medmax.IMAGE_IN_RESPONSE
        assert candidate.record.caption.split(".")[0].lower()[:20] in candidate.instruction.lower()


def test_job_run_template_all_vqa_records(demo_records):
    project = demo_records.first().project
    job = services.job_create(project=project, task=medmax.VQA, backend="template")
    assert services.job_run(job_id=job.pk) == services.RAN
    job.refresh_from_db()
    vqa_records = demo_records.exclude(question="").count()
    assert job.status == GenerationJob.DONE
    assert job.total == vqa_records == job.done
    assert Candidate.objects.filter(job=job).count() == vqa_records
    assert not Candidate.objects.filter(job=job, status=GENERATION_ERROR).exists()
