from celery import shared_task

from medmax_review.sources import services


@shared_task
def import_run_execute(import_run_id: int) -> None:
    # Claims the run with a conditional update, so a redelivered message does nothing.
    services.import_run_execute(import_run_id=import_run_id)


@shared_task
def uploads_sweep() -> int:
    """Periodic (see CELERY_BEAT_SCHEDULE): failed imports' uploads past their keeping time."""
    return services.uploads_sweep()
