import pytest
from django.urls import reverse

from medmax_review.core import medmax
from medmax_review.generation import services
from medmax_review.generation.models import GenerationJob, PromptTemplate
from medmax_review.review.candidates import CandidateSpec, candidates_create
from tests.conftest import PASSWORD

VIEW_NAMES = ["generation_jobs", "generation_templates"]


def _login(client, user):
    assert client.login(username=user.username, password=PASSWORD)


@pytest.fixture
def job(project, demo_records):
    return services.job_create(project=project, task=medmax.VQA, backend="template", filters={"limit": 4})


@pytest.mark.parametrize("name", VIEW_NAMES)
def test_generation_pages_admin_sees(client, project, admin_user, name):
    _login(client, admin_user)
    assert client.get(reverse(name, args=[project.slug])).status_code == 200


@pytest.mark.parametrize("name", VIEW_NAMES)
def test_generation_pages_reviewer_403_outsider_404(client, project, reviewer, outsider, name):
    url = reverse(name, args=[project.slug])
    _login(client, reviewer)
    assert client.get(url).status_code == 403
    client.logout()
    _login(client, outsider)
    assert client.get(url).status_code == 404


def test_generation_job_roles(client, project, admin_user, reviewer, outsider, job):
    url = reverse("generation_job", args=[project.slug, job.pk])
    _login(client, admin_user)
    assert client.get(url).status_code == 200
    for user, code in ((reviewer, 403), (outsider, 404)):
        client.logout()
        _login(client, user)
        assert client.get(url).status_code == code
        cancel = reverse("generation_job_cancel", args=[project.slug, job.pk])
        assert client.post(cancel).status_code == code
    job.refresh_from_db()
    assert job.status == GenerationJob.PENDING


def test_generation_jobs_launch_creates_job(client, project, admin_user, demo_records):
    _login(client, admin_user)
    response = client.post(reverse("generation_jobs", args=[project.slug]), {
        "task": medmax.VQA, "backend": "template", "samples": 1, "temperature": 0.7,
        "max_tokens": 256, "limit": 5, "only_new": "on", "response_format": "json_object",
    })
    job = GenerationJob.objects.get(project=project)
    assert response.status_code == 302
    assert response["Location"] == reverse("generation_job", args=[project.slug, job.pk])
    assert job.total == 5 and job.launched_by == admin_user


def test_generation_jobs_launch_refuses_unlisted_base_url(client, project, admin_user, demo_records, settings):
    settings.LLM_ALLOWED_BASE_URLS = ["http://127.0.0.1:8120/v1"]
    _login(client, admin_user)
    response = client.post(reverse("generation_jobs", args=[project.slug]), {
        "task": medmax.VQA, "backend": "openai", "model": "m", "base_url": "http://169.254.169.254/v1",
        "samples": 1, "temperature": 0.7, "max_tokens": 256, "response_format": "json_object",
    })
    assert response.status_code == 200
    assert "not in LLM_ALLOWED_BASE_URLS" in response.content.decode()
    assert not GenerationJob.objects.exists()


def test_generation_job_progress_partial_and_escaping(client, project, admin_user, job):
    # given a failed item whose raw output is hostile markup
    record = project.records.order_by("id").first()
    candidates_create(project=project, specs=[CandidateSpec(
        record_id=record.pk, task=medmax.VQA, instruction="", response="",
        image_position=medmax.IMAGE_BEFORE_INSTRUCTION, template_ref="vqa/x@v1", job_id=job.pk,
        raw_output="<script>alert(1)</script>", generation_error="not valid JSON <b>",
    )])
    _login(client, admin_user)
    url = reverse("generation_job", args=[project.slug, job.pk])
    page = client.get(url).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "not valid JSON &lt;b&gt;" in page
    # the htmx poll gets only the progress partial (with the failed items, so the table keeps
    # up with the count), which keeps polling while the job is pending
    partial = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'id="job-progress"' in partial and "<html" not in partial
    assert "Failed items" in partial and "&lt;script&gt;alert(1)&lt;/script&gt;" in partial
    assert 'hx-trigger="every 2s"' in partial
    services.job_run(job_id=job.pk)
    finished = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "hx-trigger" not in finished and "done" in finished


def test_generation_job_cancel_resume_retry_buttons(client, project, admin_user, job):
    _login(client, admin_user)
    args = [project.slug, job.pk]
    assert client.post(reverse("generation_job_cancel", args=args)).status_code == 302
    job.refresh_from_db()
    assert job.status == GenerationJob.CANCELLED
    client.post(reverse("generation_job_resume", args=args))
    job.refresh_from_db()
    assert job.status == GenerationJob.PENDING
    assert client.get(reverse("generation_job_cancel", args=args)).status_code == 405


def test_generation_templates_edit_creates_new_version(client, project, admin_user):
    _login(client, admin_user)
    url = reverse("generation_templates", args=[project.slug])
    client.get(url)  # ensures the shipped defaults
    default = PromptTemplate.objects.get(project=None, task=medmax.VQA, name="default")
    response = client.post(url, {"task": medmax.VQA, "name": "default",
                                 "text": "Q: {question}\nA: {answer}\nReply in JSON."})
    assert response.status_code == 302
    new = PromptTemplate.objects.get(project=project, task=medmax.VQA)
    assert new.version == default.version + 1 and new.ref == "vqa/default@v2"
    default.refresh_from_db()
    assert default.text != new.text  # the used version is untouched


def test_generation_templates_refuses_attribute_access(client, project, admin_user):
    _login(client, admin_user)
    url = reverse("generation_templates", args=[project.slug])
    response = client.post(url, {"task": medmax.VQA, "name": "evil",
                                 "text": "ok\n{question.__class__.__init__.__globals__}"})
    assert response.status_code == 200
    assert "line 2" in response.content.decode()
    assert not PromptTemplate.objects.filter(name="evil").exists()


def test_generation_job_offers_resume_when_worker_went_silent(client, project, admin_user, job):
    from datetime import timedelta

    from django.utils import timezone

    _login(client, admin_user)
    url = reverse("generation_job", args=[project.slug, job.pk])
    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.RUNNING, heartbeat_at=timezone.now())
    assert "Resume on another worker" not in client.get(url).content.decode()
    GenerationJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert "Resume on another worker" in client.get(url).content.decode()
    client.post(reverse("generation_job_resume", args=[project.slug, job.pk]))
    job.refresh_from_db()
    assert job.status == GenerationJob.PENDING


def test_generation_job_keeps_polling_while_cancelled_job_saves_item_in_flight(
    client, project, admin_user, job
):
    from datetime import timedelta

    from django.utils import timezone

    _login(client, admin_user)
    url = reverse("generation_job", args=[project.slug, job.pk])
    # given a cancelled job whose worker is still saving the item it had in flight
    GenerationJob.objects.filter(pk=job.pk).update(
        status=GenerationJob.CANCELLED, heartbeat_at=timezone.now()
    )
    page = client.get(url).content.decode()
    assert "hx-trigger=\"every 2s\"" in page and "saving the item in flight" in page
    assert ">Resume</button>" not in page
    # when the worker has let go (or went silent), then the page stops polling and offers Resume
    for heartbeat in (None, timezone.now() - timedelta(hours=1)):
        GenerationJob.objects.filter(pk=job.pk).update(heartbeat_at=heartbeat)
        page = client.get(url).content.decode()
        assert "hx-trigger" not in page and "saving the item in flight" not in page
        assert ">Resume</button>" in page
