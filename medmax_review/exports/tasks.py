from celery import shared_task

from medmax_review.exports import services


@shared_task
def build_dataset_version(version_id: int) -> str:
    """Build one export; a second delivery finds it no longer pending and does nothing."""
    return services.dataset_version_build(version_id=version_id).status
