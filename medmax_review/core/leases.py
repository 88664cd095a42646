"""One lease for every background run (generation jobs, exports, imports): a run is taken by
one conditional UPDATE, kept by a heartbeat, and taken over by another worker once its
heartbeat is older than the run's stale limit (its worker died).

The model needs `status` and `heartbeat_at`; the statuses are the model's own.
"""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

FRESH, TAKEN_OVER = "fresh", "taken_over"


def lease_claim(*, model, pk: int, pending: str, running: str, stale_seconds: float,
                **changes) -> str | None:
    """FRESH (a pending run), TAKEN_OVER (a running one gone silent), or None if another
    worker holds it or it is finished. Exactly one of several workers asking at once wins."""
    now = timezone.now()
    stale = now - timedelta(seconds=stale_seconds)
    mine = model.objects.filter(pk=pk)
    for claimable, outcome in (
        (Q(status=pending), FRESH),
        (Q(status=running, heartbeat_at__lt=stale) | Q(status=running, heartbeat_at__isnull=True),
         TAKEN_OVER),
    ):
        if mine.filter(claimable).update(status=running, heartbeat_at=now, **changes):
            return outcome
    return None


def lease_beat(*, model, pk: int, running: str, **changes) -> bool:
    """Renew the heartbeat (and save `changes`) while the run is still running; False when it
    is not (cancelled, or taken over by a worker that decided this one was dead)."""
    return bool(model.objects.filter(pk=pk, status=running).update(
        heartbeat_at=timezone.now(), **changes))


def lease_stale(*, model, running: str, stale_seconds: float):
    """Runs whose worker went silent: candidates for a takeover."""
    stale = timezone.now() - timedelta(seconds=stale_seconds)
    return model.objects.filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True),
                                status=running)


def lease_resend_ids(*, model, pending: str, running: str, stale_seconds: float,
                     queryset=None) -> list[int]:
    """Runs to send to a worker again: pending longer than the stale limit (their message was
    lost) or running with a silent worker. Sending one twice is harmless: the claim decides."""
    runs = queryset if queryset is not None else model.objects.all()
    waited = timezone.now() - timedelta(seconds=stale_seconds)
    lost = runs.filter(status=pending, created_at__lt=waited).values_list("id", flat=True)
    dead = lease_stale(model=model, running=running, stale_seconds=stale_seconds) \
        .filter(pk__in=runs.values("pk")).values_list("id", flat=True)
    return sorted(set(lost) | set(dead))
