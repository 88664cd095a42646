from celery import shared_task

from medmax_review.evaluation import services


# Late ack: a run whose worker died is handed out again and goes on from the items it has
# stored (evaluation_run skips them), so running it twice is safe.
@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_evaluation(run_id: int) -> str:
    return services.evaluation_run(run_id=run_id)
