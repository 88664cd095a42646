"""A confidence learned from clinicians: per project, how likely a clinician rejects a candidate.

The scores are hand-set rules; which of them predict a rejection in a given project is learned
from that project's own standing verdicts (approve and edit = kept, reject = rejected) by an
L2-regularised logistic regression on the score values and the kinds of finding. Refitted by a
periodic task; shown on the review screen with how many verdicts it learned from.
"""

import math

import numpy as np
from django.db import transaction

from medmax_review.review.models import REJECT
from medmax_review.review.selectors import verdicts_standing
from medmax_review.scoring.models import RejectModel
from medmax_review.scoring.scorers.base import NA

SCORES = ("grounding", "consistency", "phi", "format", "image", "near_duplicate", "llm_judge")
RULES = ("negation", "laterality", "number", "modality", "anatomy", "unsupported_claim",
         "unsupported_sentence")
FEATURES = [f"{name} value" for name in SCORES] + [f"{rule} findings" for rule in RULES]
MIN_VERDICTS = 20  # fewer, or only one kind of verdict: nothing worth learning yet
L2 = 1.0


def features_of(scores: dict) -> list[float]:
    """Score values (a missing or n/a score counts as passed) and counts of finding kinds."""
    values = []
    for name in SCORES:
        score = scores.get(name) or {}
        values.append(1.0 if score.get("band") == NA else float(score.get("value", 1.0)))
    rules = [e.get("rule") for s in scores.values() if isinstance(s, dict)
             for e in s.get("evidence", []) if isinstance(e, dict)]
    return values + [float(rules.count(rule)) for rule in RULES]


def fit(x: np.ndarray, y: np.ndarray, *, l2: float = L2) -> tuple[np.ndarray, float]:
    """Weights and intercept by Newton's method (a dozen steps converge on standardised data)."""
    design = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(design.shape[1])
    penalty = np.eye(design.shape[1]) * l2
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    for _ in range(25):
        p = 1 / (1 + np.exp(-design @ w))
        gradient = design.T @ (p - y) + penalty @ w
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[1:], float(w[0])


def reject_model_refit(*, project) -> RejectModel | None:
    """(Re)fit the project's model on its standing verdicts; None (and any old model removed)
    when there are too few verdicts or only one kind."""
    labels: dict[int, int] = {}
    for candidate_id, action in verdicts_standing(project=project).values_list(
            "candidate_id", "action"):
        labels[candidate_id] = max(labels.get(candidate_id, 0), int(action == REJECT))
    scores = dict(project.candidates.filter(id__in=labels).values_list("id", "scores"))
    ids = [i for i in labels if scores.get(i)]
    y = np.array([labels[i] for i in ids], dtype=float)
    if len(ids) < MIN_VERDICTS or y.min() == y.max():
        RejectModel.objects.filter(project=project).delete()
        return None
    x = np.array([features_of(scores[i]) for i in ids])
    means, scales = x.mean(axis=0), x.std(axis=0)
    scales[scales == 0] = 1.0  # a constant feature carries nothing; keep it harmless
    weights, intercept = fit((x - means) / scales, y)
    with transaction.atomic():
        model, _ = RejectModel.objects.update_or_create(project=project, defaults={
            "features": FEATURES, "weights": weights.round(6).tolist(),
            "intercept": round(intercept, 6), "means": means.tolist(), "scales": scales.tolist(),
            "decisions": len(ids), "rejected": int(y.sum()),
        })
    return model


def reject_models_refit() -> int:
    """Refit every project's model; returns how many projects have one."""
    from medmax_review.projects.models import Project

    return sum(reject_model_refit(project=p) is not None for p in Project.objects.all())


def reject_risk(candidate) -> dict | None:
    """{"risk": 0..1, "decisions", "rejected", "trained_at"} from the project's model, or None
    when the project has none yet or the candidate is unscored."""
    model = RejectModel.objects.filter(project_id=candidate.project_id).first()
    if model is None or not candidate.scores or model.features != FEATURES:
        return None
    x = (np.array(features_of(candidate.scores)) - np.array(model.means)) / np.array(model.scales)
    logit = float(np.dot(model.weights, x) + model.intercept)
    return {"risk": 1 / (1 + math.exp(-max(-30.0, min(30.0, logit)))),
            "decisions": model.decisions, "rejected": model.rejected,
            "trained_at": model.trained_at}
