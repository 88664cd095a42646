from celery import shared_task
from django.conf import settings

from medmax_review.exports import services
from medmax_review.exports.models import DatasetVersion


# Late ack: the task of a worker killed mid-export is handed out again (after the broker's
# visibility timeout) and rebuilds the version from scratch. Safe because the build is
# idempotent (tests/exports/test_worker.py kills a worker mid-export to prove it).
@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def build_dataset_version(self, version_id: int) -> str:
    version = services.dataset_version_build(version_id=version_id)
    if version.status == DatasetVersion.RUNNING:
        # Another worker holds it; look again once its heartbeat would have gone stale.
        raise self.retry(countdown=settings.EXPORT_STALE_SECONDS)
    return version.status


@shared_task
def versions_resend() -> int:
    """Periodic: versions whose message was lost or whose worker died."""
    return services.versions_resend()
