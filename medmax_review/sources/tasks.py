from celery import shared_task
from django.conf import settings

from medmax_review.sources import services
from medmax_review.sources.models import ImportRun


# Late ack: the task of a worker killed mid-import is handed out again. Safe because the run
# is claimed with a lease and rows already written come back as duplicates.
@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def import_run_execute(self, import_run_id: int) -> None:
    run = services.import_run_execute(import_run_id=import_run_id)
    if run is None and ImportRun.objects.filter(
        pk=import_run_id, status=ImportRun.RUNNING
    ).exists():
        # Another worker holds it (or held it and died): look again once its heartbeat would
        # have gone stale.
        raise self.retry(countdown=settings.IMPORT_STALE_SECONDS)


@shared_task
def uploads_sweep() -> int:
    """Periodic (see CELERY_BEAT_SCHEDULE): failed imports' uploads past their keeping time."""
    return services.uploads_sweep()


@shared_task
def import_runs_resend() -> int:
    """Periodic: imports whose message was lost or whose worker died."""
    return services.import_runs_resend()
