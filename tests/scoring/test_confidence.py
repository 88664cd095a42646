"""The clinician reject risk: learned per project from standing verdicts, shown on review."""

import numpy as np
from django.db import connection
from django.test.utils import CaptureQueriesContext

from medmax_review.review.models import APPROVE, EDIT, REJECT, Decision, ReviewSlot
from medmax_review.review.score_panel import review_scores
from medmax_review.scoring import confidence
from medmax_review.scoring.models import RejectModel
from medmax_review.scoring.services import candidates_score
from medmax_review.scoring.tasks import reject_models_refit


def test_fit_recovers_the_direction_of_a_signal():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 2))
    y = (x[:, 0] + 0.3 * rng.normal(size=400) > 0).astype(float)
    weights, _ = confidence.fit(x, y)
    assert weights[0] > 2 and abs(weights[1]) < 0.5


def _verdicts(make_record, make_candidate, demo_rows, reviewer):
    """Faithful answers approved or edited, swapped sides rejected, on a real VQA-RAD record."""
    record = make_record(demo_rows["vqarad-1582"])  # "Which lung has diffuse opacification?"
    candidates = []
    for i in range(12):
        kept = make_candidate(record, response=f"The right lung has diffuse opacification ({i}).",
                              sample_index=i)
        wrong = make_candidate(record, response=f"The left lung has diffuse opacification ({i}).",
                               sample_index=100 + i)
        candidates += [(kept, EDIT if i % 3 == 0 else APPROVE), (wrong, REJECT)]
    candidates_score(candidate_ids=[c.id for c, _ in candidates])
    for c, action in candidates:
        Decision.objects.create(candidate=c, reviewer=reviewer, action=action, candidate_version=1)
    return record, candidates


def test_reject_risk_is_learned_from_verdicts_and_shown(
        project, make_record, make_candidate, demo_rows, reviewer):
    record, candidates = _verdicts(make_record, make_candidate, demo_rows, reviewer)
    assert reject_models_refit() == 1
    model = RejectModel.objects.get(project=project)
    assert (model.decisions, model.rejected) == (24, 12)
    new_wrong = make_candidate(record, response="Only the left lung is opacified.", sample_index=500)
    new_right = make_candidate(record, response="The right lung is opacified.", sample_index=501)
    candidates_score(candidate_ids=[new_wrong.id, new_right.id])
    new_wrong.refresh_from_db()
    new_right.refresh_from_db()
    wrong_risk = review_scores(new_wrong)["reject_risk"]
    right_risk = review_scores(new_right)["reject_risk"]
    assert wrong_risk["risk"] > 0.8 and right_risk["risk"] < 0.5
    assert wrong_risk["decisions"] == 24 and 0 <= wrong_risk["percent"] <= 100


def test_too_few_verdicts_learn_nothing(project, make_record, make_candidate, demo_rows, reviewer):
    record = make_record(demo_rows["vqarad-1582"])
    c = make_candidate(record, response="The right lung.")
    candidates_score(candidate_ids=[c.id])
    Decision.objects.create(candidate=c, reviewer=reviewer, action=REJECT, candidate_version=1)
    assert reject_models_refit() == 0
    c.refresh_from_db()
    assert review_scores(c)["reject_risk"] is None


def test_refit_writes_held_out_risks_orders_the_slots_and_skips_what_it_learned(
        project, make_record, make_candidate, demo_rows, reviewer):
    record, candidates = _verdicts(make_record, make_candidate, demo_rows, reviewer)
    waiting = make_candidate(record, response="Only the left lung is opacified.", sample_index=600)
    candidates_score(candidate_ids=[waiting.id])
    assert reject_models_refit() == 1
    decided = candidates[1][0]
    decided.refresh_from_db()
    # A candidate the model learned from carries its out-of-fold risk, marked so.
    assert decided.reject_risk_detail["held_out"] is True
    assert decided.reject_risk > 0.5 and decided.reject_risk_detail["model"] == 1
    waiting.refresh_from_db()
    assert waiting.reject_risk_detail["held_out"] is False
    assert ReviewSlot.objects.get(candidate=waiting).risk == waiting.reject_risk
    assert any(name == "laterality findings" for name, _ in waiting.reject_risk_detail["drivers"])
    # Nothing new to learn from: the hourly refit keeps the model and rewrites no risk.
    with CaptureQueriesContext(connection) as queries:
        assert reject_models_refit() == 1
    assert RejectModel.objects.get(project=project).version == 1
    assert not any(q["sql"].startswith("UPDATE") for q in queries.captured_queries)
    Decision.objects.create(candidate=waiting, reviewer=reviewer, action=REJECT,
                            candidate_version=1)
    assert reject_models_refit() == 1
    assert RejectModel.objects.get(project=project).version == 2
    waiting.refresh_from_db()
    assert waiting.reject_risk_detail["model"] == 2 and waiting.reject_risk_detail["held_out"]


def test_losing_the_verdicts_removes_the_model_and_the_risks(
        project, make_record, make_candidate, demo_rows, reviewer):
    record, _ = _verdicts(make_record, make_candidate, demo_rows, reviewer)
    waiting = make_candidate(record, response="The left lung.", sample_index=700)
    candidates_score(candidate_ids=[waiting.id])
    reject_models_refit()
    assert ReviewSlot.objects.get(candidate=waiting).risk >= 0
    Decision.objects.filter(action=REJECT).delete()
    assert reject_models_refit() == 0
    waiting.refresh_from_db()
    assert waiting.reject_risk is None and waiting.reject_risk_detail == {}
    assert ReviewSlot.objects.get(candidate=waiting).risk == -1.0
    assert not project.candidates.filter(reject_risk__isnull=False).exists()
