"""A confidence learned from clinicians: per project, how likely a clinician rejects a candidate.

The scores are hand-set rules; which of them predict a rejection in a given project is learned
from that project's own standing verdicts (approve and edit = kept, reject = rejected) by an
L2-regularised logistic regression on the score values and the kinds of finding. Refitted by a
periodic task, which writes every scored candidate's risk (with the model's version) onto the
candidate: the queue orders by it and the review screen shows it. For a candidate the model
learned from, the risk written is the out-of-fold prediction, so the statistics page measures
the model on verdicts it did not see.
"""

import hashlib
import json
from dataclasses import dataclass

import numpy as np
from django.db import transaction

from medmax_review.core.bands import NA
from medmax_review.core.bulk_update import rows_update
from medmax_review.review.models import PENDING, REJECT, Candidate
from medmax_review.review.queue import slots_order_sync
from medmax_review.review.selectors import verdicts_standing
from medmax_review.scoring.models import RejectModel

SCORES = ("grounding", "consistency", "phi", "format", "image", "near_duplicate", "llm_judge")
RULES = ("negation", "laterality", "number", "modality", "anatomy", "unsupported_claim",
         "unsupported_sentence")
# Named as the review screen shows what drives a risk.
FEATURES = [f"{name} score" for name in SCORES] + [f"{rule} findings" for rule in RULES]
MIN_VERDICTS = 20  # fewer, or only one kind of verdict: nothing worth learning yet
L2 = 1.0
FOLDS = 5
DRIVERS = 3  # features shown as what raises a candidate's risk
WRITE_BATCH = 1000


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


@dataclass(frozen=True)
class Fitted:
    weights: np.ndarray
    intercept: float
    means: np.ndarray
    scales: np.ndarray

    @classmethod
    def on(cls, x: np.ndarray, y: np.ndarray) -> "Fitted":
        means, scales = x.mean(axis=0), x.std(axis=0)
        scales[scales == 0] = 1.0  # a constant feature carries nothing; keep it harmless
        weights, intercept = fit((x - means) / scales, y)
        return cls(weights, intercept, means, scales)

    @classmethod
    def of(cls, model: RejectModel) -> "Fitted":
        return cls(np.array(model.weights), model.intercept, np.array(model.means),
                   np.array(model.scales))

    def contributions(self, x: np.ndarray) -> np.ndarray:
        return self.weights * ((x - self.means) / self.scales)

    def risk(self, x: np.ndarray) -> np.ndarray:
        logit = self.contributions(x).sum(axis=-1) + self.intercept
        return 1 / (1 + np.exp(-np.clip(logit, -30.0, 30.0)))


def out_of_fold(x: np.ndarray, y: np.ndarray, *, folds: int = FOLDS) -> np.ndarray:
    """Each verdict's risk from a model fitted without it (k folds, deterministic), so the
    statistics page's precision and thresholds are not flattered by training on them."""
    fold_of = np.arange(len(y)) % folds
    risks = np.empty(len(y))
    for k in range(folds):
        held, kept = fold_of == k, fold_of != k
        if not held.any():
            continue
        if y[kept].min() == y[kept].max():  # one kind of verdict left to learn from
            risks[held] = y[kept].mean()
            continue
        risks[held] = Fitted.on(x[kept], y[kept]).risk(x[held])
    return risks


def _labels(project) -> dict[int, int]:
    labels: dict[int, int] = {}
    for candidate_id, action in verdicts_standing(project=project).values_list(
            "candidate_id", "action"):
        labels[candidate_id] = max(labels.get(candidate_id, 0), int(action == REJECT))
    return labels


def reject_model_refit(*, project) -> RejectModel | None:
    """(Re)fit the project's model on its standing verdicts and write every scored candidate's
    risk; None (old model and risks removed) when there are too few verdicts or one kind."""
    labels = _labels(project)
    scores = dict(project.candidates.filter(id__in=labels).values_list("id", "scores"))
    ids = sorted(i for i in labels if scores.get(i))
    y = np.array([labels[i] for i in ids], dtype=float)
    if len(ids) < MIN_VERDICTS or y.min() == y.max():
        RejectModel.objects.filter(project=project).delete()
        _risks_clear(project=project)
        return None
    x = np.array([features_of(scores[i]) for i in ids])
    trained_on = _digest(ids, y, x)
    same = RejectModel.objects.filter(project=project, features=FEATURES,
                                      trained_on=trained_on).first()
    if same is not None:
        return same  # nothing new to learn: its risks stand as written
    fitted = Fitted.on(x, y)
    held_out = dict(zip(ids, out_of_fold(x, y).tolist(), strict=True))
    with transaction.atomic():
        old = RejectModel.objects.select_for_update().filter(project=project).first()
        model, _ = RejectModel.objects.update_or_create(project=project, defaults={
            "features": FEATURES, "weights": fitted.weights.round(6).tolist(),
            "intercept": round(fitted.intercept, 6), "means": fitted.means.tolist(),
            "scales": fitted.scales.tolist(), "decisions": len(ids), "rejected": int(y.sum()),
            "version": (old.version + 1) if old else 1, "trained_on": trained_on,
        })
    _risks_write(project=project, model=model, held_out=held_out)
    return model


def _digest(ids: list[int], y: np.ndarray, x: np.ndarray) -> str:
    digest = hashlib.sha256(json.dumps(FEATURES).encode())
    for array in (np.array(ids, dtype=np.int64), y.astype(np.float64), x.astype(np.float64)):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def reject_models_refit() -> int:
    """Refit every project's model; returns how many projects have one."""
    from medmax_review.projects.models import Project

    return sum(reject_model_refit(project=p) is not None for p in Project.objects.all())


def _detail(model: RejectModel, contributions: np.ndarray, *, held_out: bool) -> dict:
    order = np.argsort(-contributions)[:DRIVERS]
    return {
        "model": model.version, "decisions": model.decisions, "rejected": model.rejected,
        "trained_at": model.trained_at.isoformat(), "held_out": held_out,
        "drivers": [[FEATURES[i], round(float(contributions[i]), 2)]
                    for i in order if contributions[i] > 0.05],
    }


def risks_assign(candidates: list[Candidate], *, model: RejectModel | None = None,
                 held_out: dict[int, float] | None = None) -> list[Candidate]:
    """Set reject_risk and its detail on scored candidates from their project's model (looked
    up when not given); returns those whose risk changed. Nothing is saved here."""
    models = {model.project_id: model} if model else {
        m.project_id: m for m in RejectModel.objects.filter(
            project_id__in={c.project_id for c in candidates}, features=FEATURES)}
    fitted_of = {project_id: Fitted.of(m) for project_id, m in models.items()}  # once a batch
    changed = []
    for c in candidates:
        m = models.get(c.project_id)
        if m is None or not c.scores:
            risk, detail = None, {}
        else:
            fitted = fitted_of[c.project_id]
            x = np.array(features_of(c.scores))
            contributions = fitted.contributions(x)
            own = (held_out or {}).get(c.pk)
            risk = own if own is not None else float(fitted.risk(x))
            risk, detail = round(risk, 4), _detail(m, contributions, held_out=own is not None)
        if (risk, detail) != (c.reject_risk, c.reject_risk_detail):
            c.reject_risk, c.reject_risk_detail = risk, detail
            changed.append(c)
    return changed


def _risks_write(*, project, model: RejectModel, held_out: dict[int, float]) -> None:
    last = 0
    while True:
        batch = list(project.candidates.filter(id__gt=last).exclude(scores={})
                     .only("id", "project_id", "scores", "status", "priority", "reject_risk",
                           "reject_risk_detail").order_by("id")[:WRITE_BATCH])
        if not batch:
            return
        last = batch[-1].pk
        changed = risks_assign(batch, model=model, held_out=held_out)
        with transaction.atomic():
            rows_update(objs=changed, fields=["reject_risk", "reject_risk_detail"])
            slots_order_sync(candidates=[c for c in changed if c.status == PENDING])


def _risks_clear(*, project) -> None:
    with transaction.atomic():
        pending = list(project.candidates.filter(status=PENDING, reject_risk__isnull=False)
                       .only("id", "priority"))
        project.candidates.filter(reject_risk__isnull=False).update(
            reject_risk=None, reject_risk_detail={})
        for c in pending:
            c.reject_risk = None
        slots_order_sync(candidates=pending)
