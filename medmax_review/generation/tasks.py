from celery import shared_task
from django.conf import settings

from medmax_review.generation import services


# Late ack: a chunk whose worker dies is handed out again. Safe because job_run is idempotent
# (tests/generation/test_worker.py kills a worker mid-job to prove it). Only ids travel: the
# worker reads any API key from its own settings.
@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def run_job(self, job_id: int, chunk_id: int | None = None) -> str:
    """Run a chunk of a job, and then the job's other chunks no worker has taken yet."""
    outcome = services.job_run(job_id=job_id, chunk_id=chunk_id)
    if outcome == services.BUSY:
        # Another worker holds it; look again once its heartbeat would have gone stale.
        raise self.retry(countdown=settings.GENERATION_STALE_SECONDS)
    return outcome


@shared_task
def jobs_resend() -> int:
    """Periodic: jobs whose message was lost or whose worker died."""
    return services.jobs_resend()
