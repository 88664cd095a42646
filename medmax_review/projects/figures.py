"""Per-project figures that cost O(project) to compute, stored in the database and refreshed in
the background, so a page view reads one row whatever the project's size and however many web
processes serve it (a per-process cache recounted a large project once per process and window).

Apps register a kind of figures (a compute function and how old its figures may be). A view
calls `figures_read`: figures past their age are served as they are while one refresh runs on a
worker; the process that sends it is the one whose conditional UPDATE claimed it. Figures never
computed are computed by the request that claims them; other requests meanwhile get None and
say the figures are coming. Figures that take long to compute may grow older before they are
refreshed (COST_FACTOR times the last computation), so a viewed project never costs its
worker more than a small share of a core.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from medmax_review.projects.models import Project, ProjectFigures

# A claimed refresh that has not been stored after this long (its message or worker was lost)
# may be claimed again.
CLAIM_SECONDS = 300
# Figures are refreshed at most once per COST_FACTOR times their computing time: at most 5 % of
# a core per viewed project (about 10 s for MedMax-sized statistics: every 3 to 4 minutes).
COST_FACTOR = 20


@dataclass(frozen=True)
class Kind:
    compute: Callable[[Project], dict]
    max_age_seconds: int


KINDS: dict[str, Kind] = {}


@dataclass(frozen=True)
class Figures:
    data: dict | None  # None: being computed by another request
    computed_at: datetime | None
    max_age_seconds: int


def figures_register(name: str, compute: Callable[[Project], dict], *, max_age_seconds: int):
    KINDS[name] = Kind(compute, max_age_seconds)


def figures_read(*, project: Project, name: str) -> Figures:
    row = _row(project, name)
    now = timezone.now()
    max_age = _max_age(row)
    fresh = row.computed_at is not None and row.computed_at >= now - timedelta(seconds=max_age)
    if not fresh and _claim(row, now):
        if row.data is None:
            try:
                row = figures_refresh(project=project, name=name)
            except Exception:
                ProjectFigures.objects.filter(pk=row.pk).update(refresh_claimed_at=None)
                raise
        else:
            from medmax_review.projects.tasks import figures_refresh as refresh_task

            transaction.on_commit(partial(refresh_task.delay, project.id, name), robust=True)
    return Figures(row.data, row.computed_at, round(_max_age(row)))


def _max_age(row: ProjectFigures) -> float:
    return max(KINDS[row.name].max_age_seconds, COST_FACTOR * row.compute_seconds)


def figures_refresh(*, project: Project, name: str) -> ProjectFigures:
    """Compute and store one kind of figures (running it twice only stores them twice)."""
    started = time.perf_counter()
    data = KINDS[name].compute(project)
    row = _row(project, name)
    ProjectFigures.objects.filter(pk=row.pk).update(
        data=data, computed_at=timezone.now(), refresh_claimed_at=None,
        compute_seconds=time.perf_counter() - started)
    row.refresh_from_db()
    return row


def _row(project: Project, name: str) -> ProjectFigures:
    row = ProjectFigures.objects.filter(project=project, name=name).first()
    if row is not None:  # every view but the first: one SELECT, no savepoint
        return row
    try:
        with transaction.atomic():
            row, _ = ProjectFigures.objects.get_or_create(project=project, name=name)
    except IntegrityError:  # another request created it first
        row = ProjectFigures.objects.get(project=project, name=name)
    return row


def _claim(row: ProjectFigures, now: datetime) -> bool:
    lapsed = now - timedelta(seconds=CLAIM_SECONDS)
    return bool(
        ProjectFigures.objects.filter(pk=row.pk)
        .filter(Q(refresh_claimed_at__isnull=True) | Q(refresh_claimed_at__lt=lapsed))
        .update(refresh_claimed_at=now)
    )
