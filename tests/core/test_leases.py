"""The one lease: a run is claimed once, kept by its heartbeat, taken over when silent, and sent
again when its message was lost."""

from datetime import timedelta

from django.utils import timezone

from medmax_review.core.leases import FRESH, TAKEN_OVER, lease_claim, lease_resend_ids
from medmax_review.sources import services as sources
from medmax_review.sources.models import ImportRun


def _run(project, **changes):
    run = sources.import_run_create(project=project, file_name="x.jsonl", fmt="auto", options={},
                                    upload_path="uploads/x/x.jsonl")
    ImportRun.objects.filter(pk=run.pk).update(**changes)
    return run


def _claim(run, stale=60):
    return lease_claim(model=ImportRun, pk=run.pk, pending=ImportRun.PENDING,
                       running=ImportRun.RUNNING, stale_seconds=stale)


def test_a_run_is_claimed_once_and_taken_over_only_when_silent(project):
    run = _run(project)

    assert _claim(run) == FRESH
    assert _claim(run) is None  # its worker is alive
    ImportRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert _claim(run) == TAKEN_OVER
    ImportRun.objects.filter(pk=run.pk).update(status=ImportRun.DONE)
    assert _claim(run) is None


def test_lost_and_dead_runs_are_sent_again_but_not_live_or_new_ones(project, settings):
    long_ago = timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS + 60)
    lost = _run(project)
    ImportRun.objects.filter(pk=lost.pk).update(created_at=long_ago)
    dead = _run(project, status=ImportRun.RUNNING, heartbeat_at=long_ago)
    _run(project)  # pending, just made: its message is on its way
    _run(project, status=ImportRun.RUNNING, heartbeat_at=timezone.now())  # alive
    _run(project, status=ImportRun.DONE, heartbeat_at=long_ago)
    command_line = _run(project, status=ImportRun.RUNNING, heartbeat_at=long_ago, upload_path="")

    ids = lease_resend_ids(model=ImportRun, pending=ImportRun.PENDING, running=ImportRun.RUNNING,
                           stale_seconds=settings.IMPORT_STALE_SECONDS,
                           queryset=ImportRun.objects.exclude(upload_path=""))

    assert ids == sorted([lost.pk, dead.pk])
    assert command_line.pk not in ids
    assert sources.import_runs_resend() == 2
