"""Reads for the candidate browser and the history page.

The browser pages with a keyset (the last row's sort key and id), never OFFSET, so page 5,000
costs what page 1 costs; it shows a capped count instead of a COUNT(*) over every candidate.
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Exists, F, FloatField, OuterRef, Q, QuerySet, Value
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce

from medmax_review.core.bands import FAIL, FAIR, GOOD, POOR
from medmax_review.projects.access import readable_candidates
from medmax_review.projects.models import Project
from medmax_review.review.models import (
    ADJUDICATION,
    REJECT,
    REJECT_REASONS,
    Candidate,
    Decision,
    Revision,
)
from medmax_review.review.textdiff import word_diff
from medmax_review.sources.models import SourceRecord
from medmax_review.sources.selectors import record_source_licences

BANDS = (GOOD, FAIR, POOR, FAIL)
PAGE_SIZE = 50
COUNT_CAP = 10_000
# Candidates without the chosen score sort as if it were this (below every real score).
MISSING_SCORE = -1.0
# A score name becomes part of a JSON path: letters, digits and single underscores only.
SCORE_NAME = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
SORT_FIXED = ("id", "-id", "priority", "-priority")


class BrowseError(ValueError):
    """A filter, sort or cursor the browser cannot use; the message names the field."""


@dataclass(frozen=True)
class BrowseFilters:
    task: str = ""
    source: str = ""
    license: str = ""
    status: str = ""
    score_name: str = ""
    band: str = ""
    reviewer_id: int | None = None
    model: str = ""
    backend: str = ""
    template_ref: str = ""
    reason: str = ""  # rejected with this reason (a standing reject)
    disagreement: bool = False
    sort: str = "-id"

    def as_dict(self) -> dict:
        """The non-empty filters (not the sort order), for audit entries and confirmations."""
        return {
            k: v for k, v in self.__dict__.items() if k != "sort" and v not in ("", None, False)
        }


@dataclass
class BrowsePage:
    rows: list[Candidate]
    next_cursor: str | None
    count: int
    count_capped: bool
    score_name: str = ""
    extra: dict = field(default_factory=dict)


def score_name_check(name: str) -> str:
    if not SCORE_NAME.match(name):
        raise BrowseError(f"score: {name!r} is not a score name (lowercase letters, digits, _)")
    return name


def _score_value(name: str):
    return Coalesce(
        Cast(KT(f"scores__{score_name_check(name)}__value"), FloatField()),
        Value(MISSING_SCORE),
    )


def _key_is(qs, path: str, text: str):
    """Candidates whose JSON value at `path` is the string `text`. On PostgreSQL through ->>,
    the expression its indexes hold; elsewhere through the JSON key lookup, since SQLite
    compares a KT expression as JSON and refuses plain text."""
    if connection.vendor == "postgresql":
        return qs.alias(key_text=KT(path)).filter(key_text=text)
    return qs.filter(**{path: text})


def candidates_filtered(*, project: Project, filters: BrowseFilters, user) -> QuerySet:
    """Every candidate of the project matching the filters that the user may read (unordered)."""
    return readable_candidates(candidates_matching(project=project, filters=filters), user)


def candidates_matching(*, project: Project, filters: BrowseFilters) -> QuerySet:
    """Every candidate of the project matching the filters, credentialed or not: for the
    command line, whose operator runs the server. Pages use candidates_filtered."""
    qs = Candidate.objects.filter(project=project)
    if filters.task:
        qs = qs.filter(task=filters.task)
    if filters.disagreement:
        qs = qs.filter(status=ADJUDICATION)
    elif filters.status:
        qs = qs.filter(status=filters.status)
    if filters.template_ref:
        qs = qs.filter(template_ref=filters.template_ref)
    if filters.model:
        qs = _key_is(qs, "provenance__model", filters.model)  # candidate_model_idx on PostgreSQL
    if filters.backend:
        qs = _key_is(qs, "provenance__backend", filters.backend)
    if filters.source or filters.license:
        records = SourceRecord.objects.filter(project=project)
        if filters.source:
            records = records.filter(source=filters.source)
        if filters.license:
            records = records.filter(license=filters.license)
        qs = qs.filter(record__in=records.values("id"))
    if filters.band:
        if filters.band not in BANDS:
            raise BrowseError(f"band: {filters.band!r} is not one of {', '.join(BANDS)}")
        name = score_name_check(filters.score_name) if filters.score_name else ""
        if not name:
            raise BrowseError("band: choose the score the band applies to")
        if connection.vendor == "postgresql":
            # Containment uses the GIN index candidate_scores_gin.
            qs = qs.filter(scores__contains={name: {"band": filters.band}})
        else:
            qs = qs.filter(**{f"scores__{name}__band": filters.band})
    if filters.reason:
        if filters.reason not in dict(REJECT_REASONS):
            raise BrowseError(f"reason: {filters.reason!r} is not a reject reason")
        qs = qs.filter(
            Exists(Decision.objects.filter(candidate=OuterRef("pk"), action=REJECT,
                                           reason=filters.reason, undone_by__isnull=True))
        )
    if filters.reviewer_id:
        qs = qs.filter(
            Exists(
                Decision.objects.filter(candidate=OuterRef("pk"), reviewer_id=filters.reviewer_id)
            )
        )
    return qs


def sort_spec(sort: str) -> tuple[bool, str | None]:
    """(descending, score name or None) for a sort value; 'id' and 'priority' are columns."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key in ("id", "priority"):
        return descending, None
    if key.startswith("score:"):
        return descending, score_name_check(key.removeprefix("score:"))
    raise BrowseError(f"sort: {sort!r} is not id, priority or score:<name>")


def cursor_encode(key, pk: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([key, pk]).encode()).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[float | int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key, pk = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BrowseError("cursor: not a page link this browser made; start again") from exc
    if not isinstance(pk, int) or isinstance(key, bool) or not isinstance(key, int | float):
        raise BrowseError("cursor: not a page link this browser made; start again")
    return key, pk


def candidates_browse(
    *, project: Project, filters: BrowseFilters, user, cursor: str = "", limit: int = PAGE_SIZE
) -> BrowsePage:
    """One page of candidates after `cursor`, ordered by (sort key, id) in one direction."""
    descending, score = sort_spec(filters.sort)
    qs = candidates_filtered(project=project, filters=filters, user=user)
    key_column = filters.sort.lstrip("-")
    if score:
        qs = qs.annotate(sort_key=_score_value(score))
    elif key_column == "priority":
        qs = qs.annotate(sort_key=F("priority"))
    else:
        qs = qs.annotate(sort_key=F("id"))
    count_qs = qs
    if cursor:
        key, pk = cursor_decode(cursor)
        if descending:
            # The redundant sort_key <= key bounds the index range scan.
            qs = qs.filter(Q(sort_key__lte=key), Q(sort_key__lt=key) | Q(id__lt=pk))
        else:
            qs = qs.filter(Q(sort_key__gte=key), Q(sort_key__gt=key) | Q(id__gt=pk))
    order = ("-sort_key", "-id") if descending else ("sort_key", "id")
    rows = list(qs.select_related("record").order_by(*order)[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = cursor_encode(rows[-1].sort_key, rows[-1].id) if has_more else None
    # A capped count: counting a million rows on every page view is what makes other tools slow.
    count = count_qs.order_by()[: COUNT_CAP + 1].count()
    for row in rows:
        row.score_list = scores_for_display(scores=row.scores)
        row.model_name = (row.provenance or {}).get("model", "")
    return BrowsePage(
        rows=rows,
        next_cursor=next_cursor,
        count=min(count, COUNT_CAP),
        count_capped=count > COUNT_CAP,
        score_name=score or "",
    )


def browse_choices(*, project: Project) -> dict:
    """Values offered in the filter form; each read is small (records or a recent sample)."""
    pairs = record_source_licences(project=project)
    return {
        "sources": sorted({source for source, _ in pairs}),
        "licenses": sorted({lic for _, lic in pairs if lic}),
        "score_names": score_names_recent(project=project),
        "reviewers": list(
            project.memberships.select_related("user").order_by("user__username")
        ),
    }


def score_names_recent(*, project: Project, sample: int = 200) -> list[str]:
    """Score names seen on the most recent candidates (scorers rarely change)."""
    names: set[str] = set()
    for scores in (
        Candidate.objects.filter(project=project).order_by("-id").values_list("scores", flat=True)[
            :sample
        ]
    ):
        names.update(k for k in (scores or {}) if SCORE_NAME.match(k))
    return sorted(names)


# ---- history ---------------------------------------------------------------------------------


def _evidence_item(item) -> dict:
    if isinstance(item, dict) and "text" in item:
        return {key: item.get(key, "") for key in ("rule", "text", "field", "suggestion")}
    text = item if isinstance(item, str) else json.dumps(item)
    return {"rule": "", "text": text, "field": "", "suggestion": ""}


def scores_for_display(*, scores: dict) -> list[dict]:
    """[{name, value, band, evidence: [{rule, text, field, suggestion}]}] whatever shape a
    scorer gave its evidence."""
    out = []
    for name, score in sorted((scores or {}).items()):
        score = score if isinstance(score, dict) else {"value": score}
        evidence = score.get("evidence", [])
        if isinstance(evidence, dict):
            evidence = [f"{k}: {v}" for k, v in evidence.items()]
        elif not isinstance(evidence, list):
            evidence = [evidence]
        out.append(
            {
                "name": name,
                "value": score.get("value"),
                "band": score.get("band", ""),
                "evidence": [_evidence_item(e) for e in evidence],
            }
        )
    return out


def candidate_history(*, project: Project, candidate_id: int, user) -> dict | None:
    """Revisions with a diff against the previous one of the same field, decisions, provenance;
    None when there is no such candidate or the user may not read it."""
    from medmax_review.review.score_panel import review_scores  # it builds on this module
    candidate = (
        readable_candidates(Candidate.objects.filter(project=project, id=candidate_id), user)
        .select_related("record", "job", "template").first()
    )
    if candidate is None:
        return None
    revisions = list(Revision.objects.filter(candidate=candidate).select_related("author"))
    previous: dict[str, str] = {}
    for rev in revisions:
        rev.is_first = rev.field not in previous
        rev.diff = [] if rev.is_first else word_diff(previous[rev.field], rev.text)
        # A proposed (unapplied) edit is shown against the text in force, and does not replace it.
        if getattr(rev, "applied", True) or rev.is_first:
            previous[rev.field] = rev.text
    decisions = list(
        Decision.objects.filter(candidate=candidate).select_related("reviewer", "undoes")
    )
    undone_by = {d.undoes_id: d.id for d in decisions if d.undoes_id}
    for d in decisions:
        d.undone_by_id = undone_by.get(d.id)
    return {
        "candidate": candidate,
        "revisions": revisions,
        "decisions": decisions,
        "provenance": sorted(
            (k, v if isinstance(v, str) else json.dumps(v)) for k, v in candidate.provenance.items()
        ),
        # The same panel as the review screen: value and band, what was checked, findings.
        "scores": review_scores(candidate)["scores"],
    }
