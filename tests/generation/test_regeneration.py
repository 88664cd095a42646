"""Regeneration, end to end with the template backend: rejected candidates get new candidates
for their records that point at them; the old ones keep their decisions; the review screen
shows the new text against the rejected one."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from medmax_review.core import medmax
from medmax_review.generation import services
from medmax_review.generation.models import GenerationJob
from medmax_review.review.models import REJECT, REJECTED, Candidate, Decision
from tests.generation.conftest import records_demo


@pytest.fixture
def rejected(project, demo_data, admin_user):
    """Four template-written VQA candidates: two rejected for hallucination (one of them with
    a reworded response), one for laterality, one left pending."""
    records_demo(project, demo_data, names=("vqa_rad.jsonl",))
    job = services.job_create(project=project, task=medmax.VQA, backend="template",
                              filters={"limit": 4})
    services.job_run(job_id=job.pk)
    first, second, third, _pending = Candidate.objects.filter(job=job).order_by("id")
    for candidate, reason in ((first, "hallucination"), (second, "hallucination"),
                              (third, "laterality")):
        Decision.objects.create(candidate=candidate, reviewer=admin_user, action=REJECT,
                                reason=reason, candidate_version=candidate.version)
        Candidate.objects.filter(pk=candidate.pk).update(status=REJECTED)
    Candidate.objects.filter(pk=first.pk).update(response="The scan shows a rib fracture.")
    return {"hallucination": [first, second], "laterality": [third]}


def test_generate_from_rejected_by_reason(transactional_db, project, rejected, admin_user):
    out = StringIO()
    call_command("generate", "--project", project.slug, "--backend", "template",
                 "--from-rejected", "--reason", "hallucination", "--wait", stdout=out)
    job = GenerationJob.objects.exclude(regenerates={}).get()
    assert job.status == GenerationJob.DONE and job.total == 2 and job.done == 2
    new = list(Candidate.objects.filter(job=job).order_by("record_id"))
    old = sorted(rejected["hallucination"], key=lambda c: c.record_id)
    assert [c.regenerated_from_id for c in new] == [c.pk for c in old]
    assert [c.record_id for c in new] == [c.record_id for c in old]
    assert [c.provenance["regenerated_from"] for c in new] == [c.pk for c in old]
    # The next sample of the same template: the unique generation key still holds.
    assert {c.sample_index for c in new} == {1}
    assert {c.status for c in new} == {"pending"}
    # The rejected ones are untouched, with their decisions.
    for c in old:
        c.refresh_from_db()
        assert c.status == REJECTED
        assert list(c.decisions.values_list("action", "reason")) == [(REJECT, "hallucination")]
    # Running the job again makes nothing more.
    assert services.job_run(job_id=job.pk) in (services.NOTHING_TO_DO, services.RAN,
                                               services.BUSY)
    assert Candidate.objects.filter(job=job).count() == 2
    assert f"job {job.pk}: 2 item(s) to generate" in out.getvalue()


def test_regeneration_job_run_twice_is_idempotent(project, rejected):
    from medmax_review.generation.regeneration import regeneration_launch

    (job,) = regeneration_launch(
        project=project, candidates=Candidate.objects.filter(status=REJECTED),
        backend="template")
    assert job.total == 3
    services.job_run(job_id=job.pk)
    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.PENDING)
    services.job_run(job_id=job.pk)
    assert Candidate.objects.filter(job=job).count() == 3


def test_review_screen_shows_regenerated_from_with_a_diff(project, rejected, admin_user):
    from medmax_review.generation.regeneration import regeneration_launch

    first = rejected["hallucination"][0]
    (job,) = regeneration_launch(project=project, candidates=Candidate.objects.filter(pk=first.pk),
                                 backend="template")
    services.job_run(job_id=job.pk)
    new = Candidate.objects.get(job=job)
    client = Client()
    client.force_login(admin_user)
    page = client.get(reverse("review_candidate", args=[project.slug, new.pk])).content.decode()
    assert f"Regenerated from #{first.pk} (rejected: hallucination)" in page
    assert "<del>The scan shows a rib fracture.</del>" in page
    assert f"<ins>{new.response}</ins>" in page


def test_regenerate_from_the_browser(project, rejected, admin_user):
    client = Client()
    client.force_login(admin_user)
    url = reverse("candidate_regenerate", args=[project.slug])
    confirm = client.post(url, {"status": "rejected", "reason": "laterality"})
    assert confirm.status_code == 200 and confirm.context["count"] == 1
    response = client.post(url, {"status": "rejected", "reason": "laterality",
                                 "regenerate-backend": "template", "confirm": "yes"})
    assert response.status_code == 302
    job = GenerationJob.objects.exclude(regenerates={}).get()
    assert job.regenerates == {str(rejected["laterality"][0].record_id):
                               rejected["laterality"][0].pk}


def test_regenerate_needs_admin(project, rejected, adjudicator):
    client = Client()
    client.force_login(adjudicator)
    url = reverse("candidate_regenerate", args=[project.slug])
    assert client.post(url, {"status": "rejected"}).status_code == 403


def test_regeneration_refuses_records_the_backend_cannot_generate(project, admin_user):
    from medmax_review.generation.regeneration import regeneration_launch
    from medmax_review.generation.services import JobError
    from tests.review.review_fixtures import candidates_make

    # a VQA candidate whose record has no image: the text-only template backend skips it
    (candidate,) = candidates_make(project, 1)
    Candidate.objects.filter(pk=candidate.pk).update(status=REJECTED)
    with pytest.raises(JobError, match="cannot be generated with this backend"):
        regeneration_launch(project=project, candidates=Candidate.objects.all(),
                            backend="template")
    assert not GenerationJob.objects.exists()


def test_generate_from_rejected_unknown_template(project, rejected):
    with pytest.raises(CommandError, match="--template: no template version"):
        call_command("generate", "--project", project.slug, "--backend", "local",
                     "--from-rejected", "--template", "vqa/none@v9")
