"""How well the pre-scores predict what clinicians reject, for the statistics page.

Each check (core.checks) is measured against the reasons clinicians gave: the laterality check
against "wrong laterality" rejections, PHI against "protected health information", and so on.
A candidate counts as rejected for a reason when a standing verdict rejected it for that reason,
and as kept when no standing verdict rejected it. Suggested auto-reject thresholds are the
strictest that would have rejected fewer than the project's set share of candidates the
clinicians kept. The most recent verdicts are read, up to a cap, so the page costs the same in
a project of any size.
"""

from dataclasses import dataclass, field

from medmax_review.core.bands import NA
from medmax_review.core.checks import CHECKS, SCORE_NAMES, flags
from medmax_review.projects.models import Project
from medmax_review.review.models import REJECT, REJECT_REASONS, VERDICTS, Candidate, Decision
from medmax_review.review.selectors import verdicts_standing

LATEST = 20_000  # candidates with verdicts read, newest first
MIN_CAUGHT = 3  # a threshold that would have rejected fewer is no suggestion
REASON_LABELS = dict(REJECT_REASONS)


@dataclass
class Verdict:
    scores: dict
    risk: float | None
    reasons: set = field(default_factory=set)  # empty: kept

    @property
    def rejected(self) -> bool:
        return bool(self.reasons)


def verdicts_latest(*, project: Project, limit: int = LATEST) -> list[Verdict]:
    by_candidate: dict[int, set] = {cid: set() for cid in _candidates_latest(project, limit)}
    for candidate_id, action, reason in verdicts_standing(
        candidate_ids=list(by_candidate)
    ).values_list("candidate_id", "action", "reason"):
        if action == REJECT:
            by_candidate[candidate_id].add(reason or "other")
    rows = Candidate.objects.filter(id__in=list(by_candidate)).values_list(
        "id", "scores", "reject_risk")
    return [Verdict(scores or {}, risk, by_candidate[i]) for i, scores, risk in rows]


def _candidates_latest(project: Project, limit: int) -> list[int]:
    """The candidates of the project's latest verdicts, newest first, up to `limit`: a walk back
    along the decisions' primary key (ordering the standing verdicts themselves would read and
    sort every verdict of the project first)."""
    decisions = (
        Decision.objects.filter(candidate__project=project, action__in=VERDICTS,
                                reviewer__isnull=False)
        .order_by("-id").values_list("candidate_id", flat=True)
    )
    # A candidate has about one verdict per required review, more when edited or undone.
    return list(dict.fromkeys(decisions[: 2 * limit * max(1, project.reviews_required)]))[:limit]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def checks_measured(verdicts: list[Verdict]) -> list[dict]:
    """Per check, over the candidates it ran on: how many it flagged, precision and recall
    against its reject reasons."""
    rows = []
    for check in CHECKS:
        checked = flagged = hits = relevant = 0
        for v in verdicts:
            flag = flags(check, v.scores)
            if flag is None:
                continue  # not run on this candidate: neither a hit nor a miss
            wanted = bool(v.reasons & set(check.reasons))
            checked += 1
            relevant += wanted
            if flag:
                flagged += 1
                hits += wanted
        rows.append({
            "key": check.key, "label": check.label, "checked": checked, "flagged": flagged,
            "relevant": relevant,
            "hits": hits, "precision": _share(hits, flagged), "recall": _share(hits, relevant),
            "reasons": ", ".join(REASON_LABELS.get(r, r) for r in check.reasons),
        })
    return rows


def threshold_suggest(pairs: list[tuple[float, bool]], *, max_wrong: float,
                      reject_below: bool = True) -> dict | None:
    """The loosest cut that rejects fewer than `max_wrong` kept candidates among those it
    rejects: a value below it (or, with reject_below=False, at or above it) is rejected.

    pairs: (value, clinician rejected). None when no cut catches MIN_CAUGHT rejections.
    """
    ordered = sorted(pairs, key=lambda p: p[0], reverse=not reject_below)
    total_rejected = sum(r for _, r in ordered)
    best = None
    taken = wrong = 0
    for i, (value, rejected) in enumerate(ordered):
        taken += 1
        wrong += not rejected
        if i + 1 < len(ordered) and ordered[i + 1][0] == value:
            continue  # a cut falls between distinct values only
        if wrong / taken < max_wrong and taken - wrong >= MIN_CAUGHT:
            nxt = ordered[i + 1][0] if i + 1 < len(ordered) else None
            cut = value if nxt is None else (value + nxt) / 2
            best = {"threshold": round(cut, 3) if reject_below else round(value, 3),
                    "rejects": taken, "wrong": wrong, "wrong_share": wrong / taken,
                    "caught_share": _share(taken - wrong, total_rejected)}
    if best and reject_below and best["rejects"] == len(ordered):
        best["threshold"] = round(ordered[-1][0] + 0.001, 3)  # everything is below it
    return best


def thresholds_suggested(verdicts: list[Verdict], *, max_wrong: float) -> list[dict]:
    rows = []
    for name in SCORE_NAMES:
        pairs = [(float(s["value"]), v.rejected) for v in verdicts
                 if isinstance(s := v.scores.get(name), dict) and s.get("band") != NA
                 and isinstance(s.get("value"), int | float)]
        rows.append({"score": name, "scored": len(pairs),
                     "suggestion": threshold_suggest(pairs, max_wrong=max_wrong)})
    return rows


def scorer_quality(*, project: Project) -> dict:
    verdicts = verdicts_latest(project=project)
    risks = [(v.risk, v.rejected) for v in verdicts if v.risk is not None]
    return {
        "verdicts": len(verdicts),
        "rejected": sum(v.rejected for v in verdicts),
        "capped": len(verdicts) >= LATEST,
        "max_wrong": project.auto_reject_max_wrong,
        "checks": checks_measured(verdicts),
        "thresholds": thresholds_suggested(verdicts, max_wrong=project.auto_reject_max_wrong),
        "risk_scored": len(risks),
        "risk_threshold": threshold_suggest(risks, max_wrong=project.auto_reject_max_wrong,
                                            reject_below=False),
    }
