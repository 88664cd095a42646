"""On the demo project, after a batch of clinician decisions: the review screen shows the learned
rejection probability and the statistics page each check's precision and recall."""

import re
from collections import defaultdict

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from bench import eval_set
from medmax_review.core.medmax import IMAGE_BEFORE_INSTRUCTION, VQA
from medmax_review.projects.models import Project
from medmax_review.review.candidates import CandidateSpec, candidates_create
from medmax_review.review.claims import claim_candidate
from medmax_review.review.models import APPROVE, REJECT
from medmax_review.review.services import decision_record
from medmax_review.scoring.models import RejectModel
from medmax_review.scoring.services import candidates_score
from medmax_review.scoring.tasks import reject_models_refit
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.e2e]

# The reason a clinician gives for each kind of injected error.
REASONS = {"laterality": "laterality", "modality": "modality", "negation": "hallucination",
           "number": "hallucination", "hallucination": "hallucination"}
PER_KIND = {"faithful": 40, "laterality": 10, "modality": 12, "negation": 12, "number": 6,
            "hallucination": 12, "phi": 6}
LEFT_PENDING = 2  # per kind, not decided: what the queue hands out afterwards


def _model_candidates(project):
    """Candidates as a model that makes the mistakes of the evaluation set would write them."""
    records = {r.external_id: r for r in project.records.all()}
    picked = defaultdict(list)
    for case in eval_set.build():
        kind = "phi" if case.kind.startswith("phi") else case.kind
        if case.row["id"] in records and len(picked[kind]) < PER_KIND.get(kind, 0):
            picked[kind].append(case)
    specs, kinds = [], []
    for kind, cases in picked.items():
        for i, case in enumerate(cases):
            record = records[case.row["id"]]
            specs.append(CandidateSpec(
                record_id=record.id, task=VQA, instruction=record.question,
                response=case.response, image_position=IMAGE_BEFORE_INSTRUCTION,
                sample_index=1000 + len(specs), template_ref="demo-model"))
            kinds.append((kind, i))
    created = candidates_create(project=project, specs=specs)
    return list(zip(created, kinds, strict=True))


def test_demo_project_learns_a_reject_risk_from_a_batch_of_decisions(db, open_tab):
    call_command("load_demo")
    project = Project.objects.get(slug="demo")
    users = get_user_model().objects
    reviewer, admin = users.get(username="reviewer"), users.get(username="admin")
    for user in (reviewer, admin):
        user.set_password(PASSWORD)
        user.save()
    made = _model_candidates(project)
    candidates_score(candidate_ids=list(project.candidates.values_list("id", flat=True)))
    for candidate, (kind, i) in made:
        if i >= PER_KIND[kind] - LEFT_PENDING:
            continue
        candidate.refresh_from_db()
        assert claim_candidate(candidate=candidate, user=reviewer) is not None
        if kind == "faithful":
            decision_record(candidate_id=candidate.id, user=reviewer, action=APPROVE,
                            version=candidate.version)
        else:
            decision_record(candidate_id=candidate.id, user=reviewer, action=REJECT,
                            version=candidate.version, reason=REASONS.get(kind, "phi"))

    assert reject_models_refit() == 1  # the periodic task
    model = RejectModel.objects.get(project=project)
    assert model.decisions == sum(PER_KIND.values()) - LEFT_PENDING * len(PER_KIND)

    tab = open_tab()
    tab.login(reviewer)
    tab.goto(f"/p/{project.slug}/review/")
    risk = tab.page.get_by_test_id("reject-risk")
    risk.wait_for()
    text = risk.inner_text()
    percent = int(re.search(r"(\d+)%", text).group(1))
    # Likely rejections first: an undecided erroneous answer, not a verbatim demo answer.
    assert percent >= 50, text
    assert f"learned from {model.decisions} verdicts" in text
    assert tab.page.get_by_test_id("risk-drivers").count() == 1
    tab.shot("review-reject-risk")
    tab.assert_no_csp_violations()

    admin_tab = open_tab()
    admin_tab.login(admin)
    admin_tab.goto(f"/p/{project.slug}/candidates/stats/")
    table = admin_tab.page.get_by_test_id("check-quality")
    laterality = table.locator('tr[data-check="laterality"]').inner_text()
    assert "wrong laterality" in laterality and re.search(r"\d+% \(\d+/\d+\)", laterality)
    phi = table.locator('tr[data-check="phi"]').inner_text()
    assert re.search(r"\d+% \(\d+/4\)", phi), phi  # recall over the four PHI rejections
    assert "%" in admin_tab.page.get_by_test_id("risk-threshold").inner_text()
    admin_tab.page.locator("#scorer-quality").scroll_into_view_if_needed()
    admin_tab.shot("stats-scorer-quality")
    admin_tab.assert_no_csp_violations()
