"""Pre-score a project's candidates: enqueue Celery tasks, or run inline with --wait."""

from django.core.management.base import BaseCommand, CommandError

from medmax_review.projects.models import Project
from medmax_review.scoring import services
from medmax_review.scoring.selectors import candidate_ids_to_score
from medmax_review.scoring.tasks import score_candidates


class Command(BaseCommand):
    help = "Score the candidates of a project (all, or only those never scored)."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--only-missing", action="store_true",
                            help="score only candidates that have no scores yet")
        parser.add_argument("--wait", action="store_true",
                            help="score here and now instead of enqueueing Celery tasks")
        parser.add_argument("--llm-judge", action="store_true",
                            help="also ask the configured LLM judge (OPENAI_BASE_URL/OPENAI_MODEL)")
        parser.add_argument("--chunk", type=int, default=services.BATCH_SIZE,
                            help="candidates per task or per progress line")

    def handle(self, *args, project, only_missing, wait, llm_judge, chunk, **options):
        try:
            target = Project.objects.get(slug=project)
        except Project.DoesNotExist:
            raise CommandError(f"no project with slug {project!r}") from None
        if chunk < 1:
            raise CommandError("--chunk must be at least 1")
        ids = candidate_ids_to_score(project=target, only_missing=only_missing)
        total = len(ids)
        self.stdout.write(f"{total} candidate(s) to score in project {target.slug}")
        done = 0
        for start in range(0, total, chunk):
            part = ids[start : start + chunk]
            if wait:
                services.candidates_score(candidate_ids=part, llm_judge=llm_judge)
            else:
                score_candidates.delay(part, llm_judge=llm_judge)
            done += len(part)
            verb = "scored" if wait else "enqueued"
            self.stdout.write(f"{verb} {done}/{total}")
        self.stdout.write(self.style.SUCCESS("done" if wait else "all tasks enqueued"))
