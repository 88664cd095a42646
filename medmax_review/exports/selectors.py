"""Reads for exports: approved candidates with their record, image and reviews, in batches."""

import datetime as dt
import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db import connection
from django.db.models import (
    BooleanField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    TextField,
    Value,
)
from django.db.models.fields.json import KT, KeyTextTransform, KeyTransform
from django.db.models.functions import Coalesce
from django.utils import timezone

from medmax_review.exports.models import DatasetVersion
from medmax_review.projects.models import Project
from medmax_review.review.models import (
    ADJUDICATE,
    APPROVE,
    APPROVED,
    EDIT,
    REJECT,
    UNDO,
    Candidate,
    Decision,
)
from medmax_review.review.selectors import verdicts_standing

# Verdicts count toward agreement; skip and flag do not.
VERDICTS = (APPROVE, EDIT, REJECT, ADJUDICATE)
AGREEING = (APPROVE, EDIT)


@dataclass(slots=True)
class Review:
    """The effective verdicts on one candidate (undone decisions removed)."""

    reviewers: list[str] = field(default_factory=list)
    human_verdicts: int = 0
    agreeing: int = 0
    unanimous: bool = True
    final: str = ""


class ExportRow(NamedTuple):
    """One approved candidate with its record, image and reviews: the columns in the order the
    export's query reads them (a row is built from its tuple in one step), then its reviews."""

    candidate_id: int
    record_id: int
    task: str
    instruction: str
    context: str
    response: str
    image_position: str
    template_ref: str
    template_version: int
    model: str
    edited: bool
    task_name: str  # the task as the imported file spelled it ("VQA"), "" when it came without
    # A MedMax row's own image_path, as text, when the import kept one (image_path_kept): only
    # "" matters (a row published without an image), None otherwise.
    image_path_imported: str | None
    image_path_kept: bool
    source: str
    license: str
    credential: str
    image_sha256: str  # "" when the record has no image
    image_format: str
    image_file: str  # the store's own path under MEDIA_ROOT, never a path from imported data
    citation: str  # the source's citation as the import kept it, "" without one
    scores: dict | None  # only with the provenance columns
    review: Review


def export_queryset(*, project: Project, options: dict) -> QuerySet:
    """Approved candidates of the project matching the export filters (SQL-side filters only)."""
    qs = Candidate.objects.filter(project=project, status=APPROVED)
    if options.get("tasks"):
        qs = qs.filter(task__in=options["tasks"])
    if options.get("sources"):
        qs = qs.filter(record__source__in=options["sources"])
    if options.get("licenses"):
        qs = qs.filter(record__license__in=options["licenses"])
    if options.get("exclude_licenses"):
        qs = qs.exclude(record__license__in=options["exclude_licenses"])
    if options.get("since"):
        qs = qs.filter(decided_at__gte=_day_start(options["since"]))
    if options.get("until"):
        # The until day is included.
        qs = qs.filter(decided_at__lt=_day_start(options["until"]) + dt.timedelta(days=1))
    return qs


def _day_start(day: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time.min, tzinfo=dt.UTC)


def export_count(*, project: Project, options: dict) -> int:
    return export_queryset(project=project, options=options).count()


# The candidate, its record and image in one row, in ExportRow's order. Keys the import kept in
# JSON are read as text (no JSON decoding per row): the file's own task spelling, MedMax
# image_path value and the source's citation; absent text reads as "".
_COLUMNS = (
    "id", "record_id", "task", "instruction", "context", "response", "image_position",
    "template_ref", "template_version", "model_text", "edited", "task_name_text",
    "image_path_text", "image_path_kept", "record__source", "record__license",
    "record__credential", "sha256_text", "format_text", "file_text", "citation_text",
    "scores_or_none",
)


def _text(expression):
    return Coalesce(expression, Value(""), output_field=TextField())


FIRST_BATCH = 100  # rows: the writer waits only for this many before it starts


def export_batches(
    *, project: Project, options: dict, batch_size: int = 2000
) -> Iterator[list[ExportRow]]:
    """Rows in id order from one server-side cursor over candidates, records and images (a
    named cursor on PostgreSQL: memory stays flat at any size, and the whole export reads one
    snapshot). The first batch is small and each one after doubles, up to `batch_size`, so the
    writer starts at once and a long export still reads in large batches. Reviews are read per
    batch, by the batch's id range.
    """
    with_scores = bool(options.get("provenance"))
    rows = export_queryset(project=project, options=options).order_by("id").annotate(
        model_text=_text(KT("provenance__model")),
        task_name_text=_text(KT("provenance__task_name")),
        image_path_text=KT("provenance__image_path"),
        # A kept null reads as None, like a key never kept: has_key tells them apart.
        image_path_kept=ExpressionWrapper(
            Q(provenance__has_key="image_path"), output_field=BooleanField()
        ),
        sha256_text=_text(F("record__image__sha256")),
        format_text=_text(F("record__image__format")),
        file_text=_text(F("record__image__file")),
        citation_text=_text(KeyTextTransform("source_citation", "record__meta")),
        # The scores are decoded only when the provenance columns show them.
        scores_or_none=F("scores") if with_scores else Value(None, output_field=TextField()),
    ).values_list(*_COLUMNS)
    fetched = (_fetched_named if connection.vendor == "postgresql" and connection.in_atomic_block
               else _fetched_django)
    for batch in fetched(rows, first=min(batch_size, FIRST_BATCH), most=batch_size,
                         with_scores=with_scores):
        yield _rows(batch, project=project)


def _fetched_named(rows: QuerySet, *, first: int, most: int,
                   with_scores: bool) -> Iterator[list[tuple]]:
    """The rows through a psycopg named cursor of the transaction's own, in growing fetches.
    Past Django's per-row iterator: its Python per row held the interpreter the writer needs.
    The rows need no conversion but the scores, the last column: Django's loader hands jsonb
    over as text, which its JSONField would decode."""
    sql, params = rows.query.sql_with_params()
    connection.ensure_connection()
    # A cursor is planned for its first rows; JIT compiles for a long run instead and holds
    # the first row back (half a second at 1.47M rows). Off until the transaction ends.
    connection.connection.execute("SET LOCAL jit = off")
    with connection.connection.cursor(name=f"export_{uuid.uuid4().hex}") as cursor:
        # Bound the way Django binds (on the client), so the SQL runs as Django would run it.
        cursor.execute(connection.ops.compose_sql(sql, params))
        size = first
        while batch := cursor.fetchmany(size):
            if with_scores:
                batch = [(*row[:-1], _json_or_none(row[-1])) for row in batch]
            yield batch
            size = min(most, size * 2)


def _fetched_django(rows: QuerySet, *, first: int, most: int,
                    with_scores: bool) -> Iterator[list[tuple]]:
    # Django's iterator decodes the scores itself: with_scores changes nothing here.
    size, batch = first, []
    for row in rows.iterator(chunk_size=most):
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch, size = [], min(most, size * 2)
    if batch:
        yield batch


def _json_or_none(value: str | None):
    return None if value is None else json.loads(value)


def _rows(batch: list[tuple], *, project: Project) -> list[ExportRow]:
    reviews = _reviews(project=project, first=batch[0][0], last=batch[-1][0])
    no_review = Review()
    make = ExportRow._make
    return [make((*row, reviews.get(row[0], no_review))) for row in batch]


def _reviews(*, project: Project, first: int, last: int) -> dict[int, Review]:
    """Each candidate's reviews, from `first` to `last` id, as review.selectors.
    verdicts_standing defines them, plus the decision in force. An adjudication is not a
    verdict (so not in the agreement figures), but one that settles a candidate counts as one
    agreeing review toward min_agreeing: an adjudicator read the disagreement and approved.

    By id range rather than a list of ids: one bound pair instead of thousands of parameters.
    """
    in_range = Q(candidate_id__gte=first, candidate_id__lte=last)
    standing = defaultdict(list)
    for cid, reviewer, action in verdicts_standing(project=project).filter(in_range).values_list(
        "candidate_id", "reviewer__username", "action"
    ):
        standing[cid].append((reviewer, action))
    final = _final_decisions(project=project, in_range=in_range)
    out = {}
    for cid in set(standing) | set(final):
        review = Review(final=final.get(cid, ""))
        for reviewer, action in standing.get(cid, []):
            review.human_verdicts += 1
            if reviewer not in review.reviewers:
                review.reviewers.append(reviewer)
            if action in AGREEING:
                review.agreeing += 1
            else:
                review.unanimous = False
        review.agreeing += review.final == ADJUDICATE
        out[cid] = review
    return out


def _final_decisions(*, project: Project, in_range: Q) -> dict[int, str]:
    """The decision in force per candidate: its latest decision not undone (one query; a batch
    holds a few decisions per candidate, so reading them all costs less than a second plan for
    PostgreSQL's DISTINCT ON)."""
    final = {}
    for cid, action in (
        Decision.objects.filter(in_range, candidate__project=project, undone_by__isnull=True)
        .exclude(action=UNDO).order_by("candidate_id", "id").values_list("candidate_id", "action")
    ):
        final[cid] = action
    return final


def versions_for_project(*, project: Project, stale_seconds: int) -> QuerySet:
    """Newest first, each with `stalled`: running, but silent past the stale limit, and the
    manifest's `rows` and `rows_left_out` (None until done).

    The creator comes in the same query: the list names who made each version. The manifest
    itself is not read (it lists up to EXCLUDED_LISTED left-out rows per version).
    """
    silent_since = timezone.now() - dt.timedelta(seconds=stale_seconds)
    stalled = Q(status=DatasetVersion.RUNNING, heartbeat_at__lt=silent_since)
    return (
        DatasetVersion.objects.filter(project=project)
        .select_related("created_by")
        .defer("manifest")
        .annotate(
            stalled=ExpressionWrapper(stalled, output_field=BooleanField()),
            rows=KeyTransform("rows", "manifest"),
            rows_left_out=KeyTransform("rows", KeyTransform("excluded", "manifest")),
        )
        .order_by("-number")
    )


def version_stale_seconds(*, version: DatasetVersion, stale_seconds: int) -> int | None:
    """Seconds since a running version's last heartbeat, when past the stale limit (its worker
    is gone and the redelivered task will rebuild it); None while it is alive or not running."""
    if version.status != DatasetVersion.RUNNING or version.heartbeat_at is None:
        return None
    silent = (timezone.now() - version.heartbeat_at).total_seconds()
    return int(silent) if silent > stale_seconds else None


_OPTION_LABELS = [
    ("status", "status"), ("format", "format"), ("images", "images"), ("split", "split"),
    ("provenance", "provenance columns"), ("tasks", "tasks"), ("sources", "sources"),
    ("licenses", "only licences"), ("exclude_licenses", "left-out licences"),
    ("min_agreeing", "minimum agreeing reviews"), ("since", "decided from"),
    ("until", "decided until"), ("task_names", "task names"),
]


def version_filters_display(*, version: DatasetVersion) -> list[tuple[str, str]]:
    """The options of a version as (label, text) in a fixed order (JSONB keeps no key order)."""
    out = []
    for key, label in _OPTION_LABELS:
        value = version.options.get(key)
        if isinstance(value, list):
            text = ", ".join(str(v) for v in value) if value else "all"
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        else:
            text = "–" if value is None else str(value)
        out.append((label, text))
    return out


def version_previous(*, version: DatasetVersion) -> DatasetVersion | None:
    """The project's latest finished version before this one: what its changelog is against."""
    return (
        DatasetVersion.objects.filter(
            project_id=version.project_id, number__lt=version.number,
            status=DatasetVersion.DONE,
        ).order_by("-number").first()
    )
