from celery import shared_task

from medmax_review.projects import figures
from medmax_review.projects.models import Project


@shared_task(acks_late=True)
def figures_refresh(project_id: int, name: str) -> None:
    """Recompute one kind of a project's stored figures (projects.figures)."""
    project = Project.objects.filter(pk=project_id).first()
    if project is not None and name in figures.KINDS:
        figures.figures_refresh(project=project, name=name)
