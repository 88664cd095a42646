"""Agreement metrics and the dashboard's aggregates, with the chart geometry the templates draw.

Cohen's kappa and Krippendorff's alpha are plain Python so they can be checked against textbook
values without a statistics package. Charts are SVG built by the server (no inline script or
style under the CSP): this module computes the rectangles, the template only prints them.
"""

import statistics
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable
from itertools import combinations

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Window
from django.db.models.functions import Lag

from medmax_review.projects.models import Project
from medmax_review.review.browse_selectors import BANDS
from medmax_review.review.models import (
    ADJUDICATE,
    ADJUDICATION,
    APPROVE,
    APPROVED,
    CANDIDATE_STATUS_CHOICES,
    EDIT,
    PENDING,
    REJECT,
    REJECTED,
    VERDICTS,
    Candidate,
    Decision,
)
from medmax_review.review.scorer_quality import scorer_quality
from medmax_review.review.selectors import verdicts_standing
from medmax_review.sources.models import SourceRecord

# A gap longer than this between two decisions of one reviewer is a break, not work time.
GAP_CAP_SECONDS = 600
PROGRESS_STATUSES = (APPROVED, REJECTED, PENDING, ADJUDICATION)


# ---- agreement -------------------------------------------------------------------------------


def cohen_kappa(pairs: Iterable[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa for two raters, from (rating_a, rating_b) per item.

    None when it is undefined: no items, or chance agreement is already certain.
    """
    pairs = list(pairs)
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(1 for a, b in pairs if a == b) / n
    count_a = Counter(a for a, _ in pairs)
    count_b = Counter(b for _, b in pairs)
    expected = sum(count_a[c] * count_b[c] for c in count_a) / (n * n)
    if expected == 1:
        return None
    return (observed - expected) / (1 - expected)


def krippendorff_alpha_nominal(units: Iterable[Iterable[Hashable | None]]) -> float | None:
    """Krippendorff's alpha for nominal data; each unit lists its values, None for missing.

    Units with fewer than two values are not pairable and are left out, as the method says.
    None when it is undefined (fewer than two pairable values, or a single category overall).
    """
    coincidence: dict[tuple, float] = defaultdict(float)
    for unit in units:
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c in counts:
            for k in counts:
                pairs = counts[c] * (counts[k] - 1) if c == k else counts[c] * counts[k]
                coincidence[(c, k)] += pairs / (m - 1)
    n_c: dict[Hashable, float] = defaultdict(float)
    for (c, _k), o in coincidence.items():
        n_c[c] += o
    n = sum(n_c.values())
    if n < 2:
        return None
    disagree_observed = sum(o for (c, k), o in coincidence.items() if c != k)
    disagree_expected = sum(n_c[c] * n_c[k] for c in n_c for k in n_c if c != k)
    if disagree_expected == 0:
        return None
    return 1 - (n - 1) * disagree_observed / disagree_expected


def verdicts_by_candidate(*, project: Project) -> dict[int, dict[int, str]]:
    """{candidate_id: {reviewer_id: "approve" | "reject"}}: each reviewer's standing verdict
    (selectors.verdicts_standing says which decisions those are).

    Edits count as approvals: the record is kept.
    """
    rows = verdicts_standing(project=project).values_list("candidate_id", "reviewer_id", "action")
    out: dict[int, dict[int, str]] = defaultdict(dict)
    for candidate_id, reviewer_id, action in rows:
        out[candidate_id][reviewer_id] = REJECT if action == REJECT else APPROVE
    return out


def agreement_summary(*, project: Project, names: dict[int, str]) -> dict:
    """Cohen's kappa per pair of reviewers with shared items, Krippendorff's alpha overall.

    Only candidates with two or more verdicts take part (a single verdict agrees with nobody),
    and each is visited once: pairs are collected from the candidates, not the candidates
    searched per pair (50 reviewers make 1,225 pairs).
    """
    verdicts = verdicts_by_candidate(project=project)
    reviewers = {r for by in verdicts.values() for r in by}
    multi = [by for by in verdicts.values() if len(by) >= 2]
    shared: dict[tuple[int, int], list] = defaultdict(list)
    for by in multi:
        for a, b in combinations(sorted(by), 2):
            shared[(a, b)].append((by[a], by[b]))
    pairs = [
        {"label": f"{names.get(a, a)} · {names.get(b, b)}", "kappa": cohen_kappa(items),
         "items": len(items)}
        for (a, b), items in sorted(shared.items())
    ]
    alpha = krippendorff_alpha_nominal(list(by.values()) for by in multi)
    return {"pairs": pairs, "alpha": alpha, "items": len(multi), "reviewers": len(reviewers)}


# ---- dashboard aggregates --------------------------------------------------------------------


def progress_by_task(*, project: Project) -> list[dict]:
    """[{label: task, counts: {status: n}}] for the progress bars (one GROUP BY)."""
    rows = (
        Candidate.objects.filter(project=project)
        .values_list("task", "status")
        .annotate(n=Count("id"))
        .order_by("task", "status")
    )
    by_task: dict[str, dict[str, int]] = defaultdict(dict)
    for task, status, n in rows:
        by_task[task][status] = n
    out = [{"label": task, "counts": counts} for task, counts in sorted(by_task.items())]
    if out:
        total: Counter = Counter()
        for row in out:
            total.update(row["counts"])
        out.insert(0, {"label": "all tasks", "counts": dict(total)})
    return out


THROUGHPUT_SQL = """
WITH d AS (
    SELECT d.reviewer_id, d.action,
           extract(epoch FROM d.created_at - lag(d.created_at)
                   OVER (PARTITION BY d.reviewer_id ORDER BY d.created_at)) AS gap
    FROM review_decision d JOIN review_candidate c ON c.id = d.candidate_id
    WHERE c.project_id = %(project)s AND d.reviewer_id IS NOT NULL
      AND (%(reviewer)s::bigint IS NULL OR d.reviewer_id = %(reviewer)s::bigint)
)
SELECT reviewer_id, count(*),
       count(*) FILTER (WHERE action = ANY(%(verdicts)s)),
       count(*) FILTER (WHERE action = %(edit)s),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY gap)
           FILTER (WHERE gap BETWEEN 0 AND %(cap)s)
FROM d GROUP BY reviewer_id
"""


def reviewer_throughput(*, project: Project, reviewer_id: int | None = None) -> list[dict]:
    """Per reviewer: decisions made, median seconds per item, edit rate.

    Seconds per item are the gaps between a reviewer's consecutive decisions in this project;
    gaps above GAP_CAP_SECONDS are breaks and are ignored.
    """
    if connection.vendor == "postgresql":
        # The median is computed in PostgreSQL: no decision rows travel to Python.
        with connection.cursor() as cursor:
            cursor.execute(THROUGHPUT_SQL, {
                "project": project.id, "reviewer": reviewer_id,
                "verdicts": [*VERDICTS, ADJUDICATE], "edit": EDIT, "cap": GAP_CAP_SECONDS,
            })
            rows = [
                {"reviewer_id": rid, "decisions": n, "verdicts": verdicts, "edits": edits,
                 "median_seconds": None if median is None else float(median)}
                for rid, n, verdicts, edits, median in cursor.fetchall()
            ]
    else:
        rows = reviewer_throughput_python(project=project, reviewer_id=reviewer_id)
    names = dict(
        get_user_model().objects.filter(id__in=[r["reviewer_id"] for r in rows])
        .values_list("id", "username")
    )
    for row in rows:
        row["name"] = names.get(row["reviewer_id"], "?")
        row["edit_rate"] = row["edits"] / row["verdicts"] if row["verdicts"] else None
    return sorted(rows, key=lambda r: r["name"])


def reviewer_throughput_python(*, project: Project, reviewer_id: int | None = None) -> list[dict]:
    """The same counts as THROUGHPUT_SQL, row by row (for databases without percentile_cont)."""
    qs = Decision.objects.filter(candidate__project=project, reviewer__isnull=False)
    if reviewer_id is not None:
        qs = qs.filter(reviewer_id=reviewer_id)
    rows = qs.annotate(
        previous=Window(Lag("created_at"), partition_by=["reviewer_id"], order_by="created_at")
    ).values_list("reviewer_id", "action", "created_at", "previous")
    per: dict[int, dict] = {}
    for rid, action, created, previous in rows:
        entry = per.setdefault(
            rid, {"reviewer_id": rid, "decisions": 0, "edits": 0, "verdicts": 0, "gaps": []}
        )
        entry["decisions"] += 1
        if action in VERDICTS or action == ADJUDICATE:
            entry["verdicts"] += 1
        if action == EDIT:
            entry["edits"] += 1
        if previous is not None:
            gap = (created - previous).total_seconds()
            if 0 <= gap <= GAP_CAP_SECONDS:
                entry["gaps"].append(gap)
    for entry in per.values():
        gaps = entry.pop("gaps")
        entry["median_seconds"] = statistics.median(gaps) if gaps else None
    return list(per.values())


BANDS_SQL = """
SELECT e.key, e.value ->> 'band', c.status, count(*)
FROM review_candidate c CROSS JOIN LATERAL jsonb_each(c.scores) AS e
WHERE c.project_id = %s AND c.status IN (%s, %s)
  AND jsonb_typeof(e.value) = 'object' AND e.value ? 'band'
GROUP BY 1, 2, 3
"""


def _band_counts(project: Project) -> list[tuple[str, str, str, int]]:
    """(score name, band, status, n) over decided candidates."""
    if connection.vendor == "postgresql":
        # Grouped inside PostgreSQL: a million candidates' scores never travel to Python.
        with connection.cursor() as cursor:
            cursor.execute(BANDS_SQL, [project.id, APPROVED, REJECTED])
            return [row for row in cursor.fetchall() if row[1]]
    counts: Counter = Counter()
    rows = (
        Candidate.objects.filter(project=project, status__in=(APPROVED, REJECTED))
        .exclude(scores={}).values_list("scores", "status").iterator(chunk_size=5000)
    )
    for scores, status in rows:
        for name, score in (scores or {}).items():
            band = score.get("band") if isinstance(score, dict) else None
            if band:
                counts[(name, band, status)] += 1
    return [(*key, n) for key, n in counts.items()]


def score_bands_vs_decisions(*, project: Project) -> list[dict]:
    """Per score name and band, how many decided candidates were approved vs rejected."""
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for name, band, status, n in _band_counts(project):
        counts[(name, band)][status] = n
    order = {band: i for i, band in enumerate(BANDS)}
    keys = sorted(counts, key=lambda k: (k[0], order.get(k[1], 9), k[1]))
    return [{"label": f"{name} · {band}", "counts": counts[(name, band)]} for name, band in keys]


# ---- chart geometry --------------------------------------------------------------------------

STATUS_LABELS = dict(CANDIDATE_STATUS_CHOICES)


def chart_stacked(
    *, rows: list[dict], series: Iterable[str], width: int = 640, bar: int = 22,
    gap: int = 10, label_width: int = 190, share: bool = False, labels: dict | None = None,
) -> dict:
    """Horizontal stacked bars. rows: [{label, counts: {series: n}}].

    With share=True every bar spans the full width (proportions); otherwise bars scale to the
    largest total. Returns {width, height, bars: [{label, y, total, segments}], legend}.
    """
    series = list(series)
    plot = width - label_width - 60
    largest = max((sum(r["counts"].get(s, 0) for s in series) for r in rows), default=0)
    bars = []
    for i, row in enumerate(rows):
        total = sum(row["counts"].get(s, 0) for s in series)
        scale = plot / (total if share else largest) if total and largest else 0
        x = float(label_width)
        segments = []
        for s in series:
            n = row["counts"].get(s, 0)
            if not n:
                continue
            w = n * scale
            segments.append(
                {"series": s, "x": round(x, 2), "width": round(w, 2), "n": n,
                 "share": round(100 * n / total, 1)}
            )
            x += w
        bars.append(
            {"label": row["label"], "y": i * (bar + gap), "text_y": i * (bar + gap) + bar * 0.7,
             "total": total, "end_x": round(x + 6, 2), "segments": segments}
        )
    return {
        "width": width, "height": max(len(rows), 1) * (bar + gap), "bar": bar,
        "label_width": label_width, "bars": bars, "share": share,
        "legend": [{"series": s, "label": (labels or STATUS_LABELS).get(s, s)} for s in series],
    }


def chart_values(
    *, rows: list[dict], width: int = 640, bar: int = 22, gap: int = 10,
    label_width: int = 190, lo: float = 0.0, hi: float | None = None, unit: str = "",
    decimals: int = 2,
) -> dict:
    """Horizontal bars of one value each. rows: [{label, value (None: no data)}], optionally
    with `interval` (low, high) drawn as a whisker, and `href` for the label's link.

    Values run from `lo` (may be negative, as kappa can be) to `hi` (default: the largest).
    """
    values = [r["value"] for r in rows if r["value"] is not None]
    hi = hi if hi is not None else max(values, default=0) or 1
    plot = width - label_width - 70
    span = hi - lo
    zero_x = label_width + plot * (max(lo, 0) - lo) / span if span else label_width

    def x_of(value: float) -> float:
        return round(label_width + plot * (min(max(value, lo), hi) - lo) / span, 2) if span else zero_x

    bars = []
    for i, row in enumerate(rows):
        v = row["value"]
        entry = {"label": row["label"], "y": i * (bar + gap), "text_y": i * (bar + gap) + bar * 0.7,
                 "value": v, "note": row.get("note", ""), "negative": v is not None and v < 0,
                 "href": row.get("href", ""), "marked": row.get("marked", False)}
        if v is not None:
            end = x_of(v)
            entry["x"] = round(min(zero_x, end), 2)
            entry["width"] = round(abs(end - zero_x), 2)
            entry["end_x"] = round(max(zero_x, end) + 6, 2)
        if row.get("interval"):
            entry["ci_x1"], entry["ci_x2"] = (x_of(b) for b in row["interval"])
            entry["ci_y"] = bar / 2
            entry["end_x"] = max(entry.get("end_x", 0), round(entry["ci_x2"] + 6, 2))
        bars.append(entry)
    return {"width": width, "height": max(len(rows), 1) * (bar + gap), "bar": bar,
            "zero_x": round(zero_x, 2), "empty_x": round(zero_x + 6, 2),
            "label_width": label_width, "bars": bars, "unit": unit, "decimals": decimals}


STATS_SECONDS = 60  # how old the page's figures may be: computing them reads every verdict
COUNTS_SECONDS = 30  # the same for the project dashboard's counts


def project_counts(project: Project) -> dict:
    """Records and candidates per status: the project dashboard's counts."""
    by_status = dict(
        Candidate.objects.filter(project=project)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {
        "records": SourceRecord.objects.filter(project=project).count(),
        "candidates": sum(by_status.values()),
        "by_status": by_status,
    }


def stats_compute(project: Project) -> dict:
    """Everything the statistics page draws, as stored figures (JSON): every reviewer's
    throughput, agreement, progress, bands against decisions and the scorers' quality."""
    throughput = reviewer_throughput(project=project)
    names = {t["reviewer_id"]: t["name"] for t in throughput}
    return {
        "throughput": throughput,
        "agreement": agreement_summary(project=project, names=names),
        "progress": progress_by_task(project=project),
        "bands": score_bands_vs_decisions(project=project),
        "quality": scorer_quality(project=project),
    }


def dashboard_data(*, figures: dict, reviewer_only_id: int | None = None) -> dict:
    """The statistics page's charts drawn from stored figures; a reviewer sees only their own
    throughput."""
    throughput = figures["throughput"]
    if reviewer_only_id is not None:
        throughput = [t for t in throughput if t["reviewer_id"] == reviewer_only_id]
    data = {
        "throughput_chart": chart_values(
            rows=[{"label": t["name"], "value": t["decisions"]} for t in throughput], decimals=0
        ),
        "speed_chart": chart_values(
            rows=[{"label": t["name"], "value": t["median_seconds"]} for t in throughput], unit="s",
            decimals=0,
        ),
        "throughput": throughput,
    }
    if reviewer_only_id is not None:
        return data
    agreement = figures["agreement"]
    edit_rows = [
        {"label": t["name"], "value": None if t["edit_rate"] is None else 100 * t["edit_rate"]}
        for t in throughput
    ]
    data.update(
        {
            "progress_chart": chart_stacked(rows=figures["progress"], series=PROGRESS_STATUSES),
            "agreement": agreement,
            "kappa_chart": chart_values(
                rows=[{"label": p["label"], "value": p["kappa"], "note": f"{p['items']} items"}
                      for p in agreement["pairs"]],
                lo=-1.0, hi=1.0,
            ),
            "alpha_chart": chart_values(
                rows=[{"label": "all reviewers", "value": agreement["alpha"],
                       "note": f"{agreement['items']} items"}],
                lo=-1.0, hi=1.0,
            ),
            "edit_chart": chart_values(rows=edit_rows, lo=0.0, hi=100.0, unit="%", decimals=0),
            "bands_chart": chart_stacked(
                rows=figures["bands"], series=(APPROVED, REJECTED), share=True,
            ),
            "quality": figures["quality"],
        }
    )
    return data
