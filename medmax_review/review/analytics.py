"""Rejection analytics: how often, and why, candidates are rejected, per template version, model,
backend, task, source, licence and score band; with Wilson intervals and a test that marks a
template version rejecting significantly more than its predecessor.

Only reads. Counts are grouped in the database (one GROUP BY per breakdown), so the page costs
the same for a hundred candidates or a million.
"""

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, F, Q, QuerySet
from django.db.models.fields.json import KT
from django.utils.http import urlencode

from medmax_review.projects.access import readable_candidates
from medmax_review.projects.models import Project
from medmax_review.review.browse_selectors import BANDS, score_name_check
from medmax_review.review.models import (
    APPROVED,
    REJECT,
    REJECT_REASONS,
    REJECTED,
    Candidate,
)
from medmax_review.review.stats import chart_stacked, chart_values

# 95% two-sided.
Z_95 = 1.959963984540054
SIGNIFICANCE = 0.05
REASON_LABELS = dict(REJECT_REASONS)
NO_VALUE = "(none)"

# name -> (heading, the candidate field grouped on, the candidate browser's filter for it).
# Paths into JSON (provenance, scores) are read as text with KT.
DIMENSIONS = {
    "template": ("Template version", "template_ref", "template"),
    "model": ("Model", "provenance__model", "model"),
    "backend": ("Backend", "provenance__backend", "backend"),
    "task": ("Task", "task", "task"),
    "source": ("Source", "record__source", "source"),
    "license": ("Licence", "record__license", "license"),
}
_JSON_FIELDS = ("provenance__", "scores__")
BAND_DIMENSION = "band"
_TEMPLATE_REF = re.compile(r"^(?P<family>.+)@v(?P<version>\d+)$")


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """The Wilson score interval for a proportion; None without observations.

    Wilson rather than the normal approximation: it stays inside [0, 1] and is honest for the
    small counts a new template version starts with.
    """
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def two_proportion_z(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float] | None:
    """(z, two-sided p) of the pooled two-proportion z-test of k2/n2 against k1/n1."""
    if n1 <= 0 or n2 <= 0:
        return None
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return None
    z = (k2 / n2 - k1 / n1) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


@dataclass
class Group:
    value: str
    decided: int
    rejected: int
    reasons: dict[str, int] = field(default_factory=dict)
    # Set on template versions compared with their predecessor.
    predecessor: str = ""
    z: float | None = None
    p_value: float | None = None
    worse: bool = False
    # Set for the page: the browser's address of the rejected ones, and of each reason's.
    rejected_href: str = ""
    reason_links: list[tuple[str, int, str]] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        return self.rejected / self.decided if self.decided else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.rejected, self.decided)


@dataclass
class Breakdown:
    name: str
    heading: str
    browse_filter: str
    groups: list[Group]
    score_name: str = ""


def _decided(*, project: Project, user) -> QuerySet[Candidate]:
    # The same candidates the user could open from the drill-down links.
    return readable_candidates(
        Candidate.objects.filter(project=project, status__in=(APPROVED, REJECTED)), user
    )


def _group_counts(qs: QuerySet[Candidate], path: str) -> dict[str, tuple[int, int]]:
    rows = (
        qs.annotate(group_value=_expression(path)).values("group_value")
        .annotate(decided=Count("id"), rejected=Count("id", filter=Q(status=REJECTED)))
        .order_by()
    )
    return {_label(r["group_value"]): (r["decided"], r["rejected"]) for r in rows}


def _reason_counts(qs: QuerySet[Candidate], path: str) -> dict[str, dict[str, int]]:
    """Per group, the reasons of the rejected candidates: each standing reject (a reviewer's or
    the system's) gives its reason once per candidate."""
    rows = (
        # One filter() call: the reason counted is that of the same standing reject.
        qs.filter(status=REJECTED, decisions__action=REJECT,
                  decisions__undone_by__isnull=True)
        .annotate(group_value=_expression(path))
        .values("group_value", "decisions__reason")
        .annotate(n=Count("id", distinct=True))
        .order_by()
    )
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for r in rows:
        reason = r["decisions__reason"] or "other"
        group = out[_label(r["group_value"])]
        group[reason] = group.get(reason, 0) + r["n"]
    return out


def _expression(path: str):
    return KT(path) if path.startswith(_JSON_FIELDS) else F(path)


def _label(value) -> str:
    return NO_VALUE if value in (None, "") else str(value)


def _breakdown(qs, *, name, heading, path, browse_filter, score_name="") -> Breakdown:
    counts = _group_counts(qs, path)
    reasons = _reason_counts(qs, path)
    groups = [
        Group(value=value, decided=decided, rejected=rejected, reasons=reasons.get(value, {}))
        for value, (decided, rejected) in counts.items()
    ]
    if name == BAND_DIMENSION:
        order = {band: i for i, band in enumerate(BANDS)}
        groups.sort(key=lambda g: (order.get(g.value, len(BANDS)), g.value))
    else:
        groups.sort(key=_natural_key)
    return Breakdown(
        name=name, heading=heading, browse_filter=browse_filter, groups=groups,
        score_name=score_name,
    )


def _natural_key(group: Group):
    """Template refs sort by family then version number (v10 after v9)."""
    match = _TEMPLATE_REF.match(group.value)
    if match:
        return (match["family"], int(match["version"]), "")
    return (group.value, 0, "")


def mark_template_regressions(groups: list[Group]) -> None:
    """Compare each template version with the previous version of the same template that has
    decisions; mark it when it rejects more and the difference is significant: the Wilson
    intervals do not overlap, or the two-proportion z-test gives p < SIGNIFICANCE."""
    families: dict[str, list[tuple[int, Group]]] = defaultdict(list)
    for g in groups:
        match = _TEMPLATE_REF.match(g.value)
        if match and g.decided:
            families[match["family"]].append((int(match["version"]), g))
    for versions in families.values():
        versions.sort(key=lambda item: item[0])
        for (_, before), (_, after) in zip(versions, versions[1:], strict=False):
            after.predecessor = before.value
            test = two_proportion_z(before.rejected, before.decided, after.rejected, after.decided)
            if test is not None:
                after.z, after.p_value = test
            higher = after.rate > before.rate
            apart = after.interval[0] > before.interval[1]
            after.worse = higher and (apart or (after.p_value is not None
                                                and after.p_value < SIGNIFICANCE))


def rejection_analytics(*, project: Project, user, score_name: str = "") -> list[Breakdown]:
    """Every breakdown of the project's decided candidates the user may read.

    The score band breakdown is for one score (`score_name`); without one it is left out.
    """
    qs = _decided(project=project, user=user)
    out = []
    for name, (heading, path, browse_filter) in DIMENSIONS.items():
        out.append(_breakdown(qs, name=name, heading=heading, path=path,
                              browse_filter=browse_filter))
    mark_template_regressions(out[0].groups)
    if score_name:
        name = score_name_check(score_name)
        out.append(_breakdown(
            qs, name=BAND_DIMENSION, heading=f"Score band · {name}",
            path=f"scores__{name}__band", browse_filter="band", score_name=name,
        ))
    return out


# ---- the page: charts, drill-down links, CSV ------------------------------------------------


def _browse_query(breakdown: Breakdown, group: Group, status: str = "", reason: str = "") -> str:
    """The candidate browser's query for a group's candidates; "" when the group has no value
    to filter on (candidates without a model, say)."""
    if group.value == NO_VALUE:
        return ""
    query = {breakdown.browse_filter: group.value}
    if status:
        query["status"] = status
    if reason:
        query["reason"] = reason
    if breakdown.score_name:
        query["score"] = breakdown.score_name
    return urlencode(query)


def breakdown_page(*, breakdown: Breakdown, browse_url: str) -> dict:
    """A breakdown with its two charts: rejection rate with its interval, and reasons."""
    reasons = [code for code, _ in REJECT_REASONS
               if any(code in g.reasons for g in breakdown.groups)]
    rows = []
    for g in breakdown.groups:
        query = _browse_query(breakdown, g, REJECTED)
        g.rejected_href = f"{browse_url}?{query}" if query else ""
        # Each reason opens its rejected candidates, where they can be regenerated.
        g.reason_links = [
            (REASON_LABELS.get(code, code), g.reasons[code],
             f"{browse_url}?{_browse_query(breakdown, g, REJECTED, code)}" if query else "")
            for code in reasons if code in g.reasons
        ]
        interval = g.interval
        rows.append({
            "label": g.value, "value": None if g.rate is None else 100 * g.rate,
            "interval": interval and (100 * interval[0], 100 * interval[1]),
            "note": f"{g.rejected}/{g.decided}" + (" · worse than " + g.predecessor
                                                     if g.worse else ""),
            "href": g.rejected_href, "marked": g.worse,
        })
    return {
        "breakdown": breakdown,
        "rate_chart": chart_values(rows=rows, lo=0.0, hi=100.0, unit="%", decimals=1,
                                   width=760, label_width=230),
        "reasons_chart": chart_stacked(
            rows=[{"label": g.value, "counts": g.reasons} for g in breakdown.groups if g.reasons],
            series=reasons, share=True, labels=REASON_LABELS, width=760, label_width=230,
        ),
    }


CSV_HEADER = ["breakdown", "value", "decided", "rejected", "rejection_rate", "ci_low",
              "ci_high", "predecessor", "z", "p_value", "significantly_worse",
              *[f"reason_{code}" for code, _ in REJECT_REASONS]]


def _cell(value) -> str:
    """A CSV cell a spreadsheet will not run as a formula (values come from imported data)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def analytics_csv_rows(breakdowns: list[Breakdown]):
    yield CSV_HEADER
    for b in breakdowns:
        for g in b.groups:
            low, high = g.interval or (None, None)
            yield [_cell(v) for v in (
                b.name if not b.score_name else f"band:{b.score_name}", g.value, g.decided,
                g.rejected, _round(g.rate), _round(low), _round(high), g.predecessor,
                _round(g.z), _round(g.p_value), "yes" if g.worse else "",
                *[g.reasons.get(code, 0) for code, _ in REJECT_REASONS],
            )]


def _round(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
