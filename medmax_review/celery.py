import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medmax_review.settings")

app = Celery("medmax_review")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _import_generation_client(**_):
    """Import the OpenAI client once as the worker starts (before a prefork pool forks), so a
    worker's first generation job does not pay for it: over a second on a busy machine."""
    from medmax_review.generation.backends import openai_compat  # noqa: F401
