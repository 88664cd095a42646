"""Evaluate a model on a dataset version's split: queue the run, or run it here with --wait."""

from django.core.management.base import BaseCommand, CommandError

from medmax_review.evaluation import services
from medmax_review.evaluation.models import EvaluationRun
from medmax_review.exports.models import DatasetVersion
from medmax_review.projects.models import Project


class Command(BaseCommand):
    help = "Ask a model every VQA and captioning item of a version's split and score it."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # --version names the dataset version here, in place of Django's own --version.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--version", required=True, type=int, help="version number")
        parser.add_argument("--split", default="test")
        parser.add_argument("--backend", required=True, choices=services.EVAL_BACKENDS)
        parser.add_argument("--model", default="")
        parser.add_argument("--base-url", default="")
        parser.add_argument("--judge-backend", default="", choices=["", *services.EVAL_BACKENDS])
        parser.add_argument("--judge-model", default="")
        parser.add_argument("--wait", action="store_true", help="run here and print the result")

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"--project: no project with slug {opts['project']!r}")
        version = DatasetVersion.objects.filter(project=project, number=opts["version"]).first()
        if version is None:
            raise CommandError(f"--version: {project.slug} has no v{opts['version']}")
        try:
            run = services.evaluation_create(
                version=version, split=opts["split"], backend=opts["backend"],
                model=opts["model"], base_url=opts["base_url"],
                judge_backend=opts["judge_backend"], judge_model=opts["judge_model"],
            )
        except services.EvaluationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"evaluation {run.pk}: {run.total} item(s) of v{version.number} "
                          f"{run.split}")
        if not opts["wait"]:
            self.stdout.write("queued; a worker will run it")
            return
        services.evaluation_run(run_id=run.pk)
        run.refresh_from_db()
        if run.status != EvaluationRun.DONE:
            raise CommandError(f"evaluation {run.pk} {run.status}: {run.error}")
        overall = run.summary["overall"]
        self.stdout.write(f"accuracy {overall['accuracy']:.4f} ± {overall['se']:.4f} "
                          f"(n={overall['n']})")
        for key in ("by_task", "by_source", "by_question_type"):
            for name, a in run.summary[key].items():
                self.stdout.write(f"  {key[3:]} {name}: {a['accuracy']:.4f} ± {a['se']:.4f} "
                                  f"(n={a['n']})")
