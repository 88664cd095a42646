"""Model evaluation on a version's test split: a loopback OpenAI-compatible stub whose answers
are known (accuracy checked exactly), resuming, the page, and the local model."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from medmax_review.core import medmax
from medmax_review.evaluation import scoring, services
from medmax_review.evaluation.models import EvaluationItem, EvaluationRun
from medmax_review.exports import services as exports
from medmax_review.review.candidates import CandidateSpec, candidates_create
from medmax_review.sources.models import SourceRecord
from tests.generation.conftest import pair_reply, require_local_model

# (task, question, reference, what the stub answers, what the judge says of it)
ITEMS = [
    (medmax.VQA, "Is there a fracture?", "yes", "Yes, there is.", None),
    (medmax.VQA, "Is the heart enlarged?", "no", "yes", None),
    (medmax.VQA, "Which lobe? A. upper B. lower", "B", "The answer is B.", None),
    (medmax.VQA, "Which lung has the opacity?", "left lung", "the left lung", "yes"),
    (medmax.IMAGE_CAPTIONING, "Describe the image.", "a chest x-ray showing a nodule",
     "chest xray", "no"),
]


@pytest.fixture
def version(project):
    """Version 1, every row in its test split."""
    specs = []
    for i, (task, question, reference, _, _) in enumerate(ITEMS):
        record = SourceRecord.objects.create(
            project=project, source="known" if i % 2 else "other", external_id=f"r{i}",
            question=question, answer=reference, license="CC0-1.0")
        specs.append(CandidateSpec(
            record_id=record.pk, task=task, instruction=question, response=reference,
            image_position=medmax.IMAGE_NONE))
    candidates_create(project=project, specs=specs, approved_note="known answers")
    built = exports.dataset_version_build(version_id=exports.dataset_version_create(
        project=project, options={"split": "0,0,1"}).pk)
    assert built.status == "done", built.error
    return built


@pytest.fixture
def answering(stub_server, settings):
    """The stub answers each question as ITEMS says, and judges as ITEMS says; it is also the
    server's own OpenAI-compatible server (the judge's)."""
    settings.OPENAI_BASE_URL = stub_server.base_url
    answers = {q: a for _, q, _, a, _ in ITEMS}
    verdicts = {a: v for _, _, _, a, v in ITEMS}

    def reply(body):
        prompt = body["messages"][-1]["content"]
        if prompt.startswith("You grade answers"):
            said = prompt.split("Model answer: ", 1)[1].split("\n", 1)[0]
            return 200, pair_reply(body, content=verdicts[said])
        return 200, pair_reply(body, content=answers[prompt])

    stub_server.default = reply
    return stub_server


def test_scoring_rules():
    assert scoring.question_type(task="vqa", instruction="", reference="Yes") == scoring.CLOSED
    assert scoring.question_type(task="vqa", instruction="", reference="(C)") == \
        scoring.MULTIPLE_CHOICE
    assert scoring.question_type(task="vqa", instruction="", reference="left") == scoring.OPEN
    assert scoring.score_closed("No, it is not.", "no") == 1.0
    assert scoring.score_choice("I think (C) fits", "C") == 1.0
    assert round(scoring.token_f1("chest xray", "a chest x-ray showing a nodule"), 4) == 0.6667


def test_evaluate_with_stub_token_f1(project, version, answering):
    out = StringIO()
    call_command("evaluate", "--project", project.slug, "--version", "1", "--backend", "openai",
                 "--base-url", answering.base_url, "--model", "stub-model", "--wait", stdout=out)
    run = EvaluationRun.objects.get()
    assert run.status == "done" and (run.done, run.total) == (5, 5)
    s = run.summary
    # scores 1, 0, 1, 1, 2/3
    assert s["overall"] == {"n": 5, "accuracy": 0.733333, "se": 0.173845}
    assert s["by_question_type"]["closed"] == {"n": 2, "accuracy": 0.5, "se": 0.353553}
    assert s["by_question_type"]["multiple_choice"] == {"n": 1, "accuracy": 1.0, "se": 0.0}
    assert s["by_question_type"]["open"] == {"n": 2, "accuracy": 0.833333, "se": 0.117851}
    assert s["by_task"]["image_captioning"]["accuracy"] == 0.666667
    assert s["by_source"]["other"] == {"n": 3, "accuracy": 0.888889, "se": 0.090722}
    assert "accuracy 0.7333 ± 0.1738 (n=5)" in out.getvalue()
    methods = dict(EvaluationItem.objects.values_list("question_type", "method").distinct())
    assert methods == {"closed": "yes/no", "multiple_choice": "letter", "open": "token F1"}


def test_evaluate_with_a_judge(project, version, answering):
    run = services.evaluation_create(version=version, backend="openai", model="stub-model",
                                     base_url=answering.base_url, judge_backend="openai",
                                     judge_model="stub-judge")
    assert services.evaluation_run(run_id=run.pk) == "done"
    run.refresh_from_db()
    assert run.summary["overall"]["accuracy"] == 0.6
    assert run.summary["by_question_type"]["open"] == {"n": 2, "accuracy": 0.5, "se": 0.353553}


def test_evaluation_resumes_from_stored_items(project, version, answering):
    run = services.evaluation_create(version=version, backend="openai", model="stub-model",
                                     base_url=answering.base_url)
    first = version.project.candidates.order_by("id").first()
    EvaluationItem.objects.create(run=run, candidate_id=first.pk, task="vqa", source="other",
                                  question_type="closed", prediction="yes", score=1.0,
                                  method="yes/no")
    EvaluationRun.objects.filter(pk=run.pk).update(done=1)
    assert services.evaluation_run(run_id=run.pk) == "done"
    assert len(answering.requests) == 4  # the stored item was not asked again
    assert services.evaluation_run(run_id=run.pk) == "busy or finished"
    assert EvaluationItem.objects.filter(run=run).count() == 5
    run.refresh_from_db()
    assert run.done == 5


def test_evaluation_page_and_chart(project, version, answering, admin_user):
    client = Client()
    client.force_login(admin_user)
    url = reverse("evaluation_list", args=[project.slug])
    response = client.post(url, {"version": 1, "split": "test", "backend": "openai",
                                 "model": "stub-model"})
    assert response.status_code == 302
    run = EvaluationRun.objects.get()
    services.evaluation_run(run_id=run.pk)
    page = client.get(url).content.decode()
    assert "v1 · stub-model" in page and "73.3%" in page
    detail = client.get(reverse("evaluation_detail", args=[project.slug, run.pk])).content.decode()
    assert "0.7333" in detail


def test_evaluation_refuses_a_missing_split(project, version):
    with pytest.raises(services.EvaluationError, match="split: v1 has no 'train' rows"):
        services.evaluation_create(version=version, split="train", backend="local")


def test_evaluate_with_the_local_model(project, version):
    require_local_model()
    run = services.evaluation_create(version=version, backend="local")
    assert services.evaluation_run(run_id=run.pk) == "done"
    run.refresh_from_db()
    assert run.summary["overall"]["n"] == 5
    assert 0.0 <= run.summary["overall"]["accuracy"] <= 1.0


def test_evaluation_progress_fragment_polls_while_running(project, version, admin_user):
    run = EvaluationRun.objects.create(project=project, version=version, backend="local",
                                       total=5)
    client = Client()
    client.force_login(admin_user)
    url = reverse("evaluation_detail", args=[project.slug, run.pk])
    fragment = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert fragment.strip().startswith('<p id="evaluation-progress"') and 'hx-trigger="every 2s"' in fragment
    assert "0 of 5 items" in fragment
