"""Launch a generation job from the terminal: enqueue it, or run it here with --wait."""

import threading

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from medmax_review.core.medmax import TASKS
from medmax_review.generation import regeneration, selectors, services
from medmax_review.generation.models import BACKEND_CHOICES, GenerationJob
from medmax_review.projects.models import Project
from medmax_review.review import browse_selectors
from medmax_review.review.browse_selectors import BrowseFilters
from medmax_review.review.models import REJECT_REASONS, REJECTED


def _run_and_close(job_id: int) -> None:
    try:
        services.job_run(job_id=job_id)
    finally:
        connection.close()  # this thread's own connection


class Command(BaseCommand):
    help = "Generate candidates for one task from a project's source records."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--task", choices=TASKS, help="required unless --from-rejected")
        parser.add_argument("--backend", required=True, choices=[b for b, _ in BACKEND_CHOICES])
        parser.add_argument("--model", default="")
        parser.add_argument("--base-url", default="")
        parser.add_argument("--source", default="")
        parser.add_argument("--license", default="")
        parser.add_argument("--modality", default="")
        parser.add_argument("--limit", type=int)
        parser.add_argument("--samples", type=int, default=1)
        parser.add_argument("--temperature", type=float)
        parser.add_argument("--max-tokens", type=int)
        parser.add_argument("--wait", action="store_true", help="run here and print progress")
        parser.add_argument(
            "--from-rejected", action="store_true",
            help="regenerate the rejected candidates (of --task, if given) for their records",
        )
        parser.add_argument("--reason", default="", choices=["", *dict(REJECT_REASONS)],
                            help="with --from-rejected: only those rejected for this reason")
        parser.add_argument("--template", default="",
                            help='a template version, e.g. "vqa/default@v2"')

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"--project: no project with slug {opts['project']!r}")
        template = None
        if opts["template"]:
            template = selectors.template_by_ref(project=project, ref=opts["template"])
            if template is None:
                raise CommandError(f"--template: no template version {opts['template']!r}")
        if opts["from_rejected"]:
            self._regenerate(project, opts, template)
            return
        if not opts["task"]:
            raise CommandError("--task is required (or --from-rejected)")
        parameters = {
            key: opts[name]
            for key, name in (("temperature", "temperature"), ("max_tokens", "max_tokens"))
            if opts[name] is not None
        }
        filters = {key: opts[key] for key in ("source", "license", "modality", "limit")}
        try:
            job = services.job_create(
                project=project, task=opts["task"], backend=opts["backend"], model=opts["model"],
                base_url=opts["base_url"], filters=filters, samples=opts["samples"],
                parameters=parameters, template=template,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self._launched(job, wait=opts["wait"])

    def _regenerate(self, project, opts, template):
        filters = BrowseFilters(status=REJECTED, reason=opts["reason"], task=opts["task"] or "")
        candidates = browse_selectors.candidates_matching(project=project, filters=filters)
        try:
            jobs = regeneration.regeneration_launch(
                project=project, candidates=candidates, backend=opts["backend"],
                model=opts["model"], template=template,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        for job in jobs:
            self._launched(job, wait=opts["wait"])

    def _launched(self, job: GenerationJob, *, wait: bool):
        self.stdout.write(f"job {job.pk}: {job.total} item(s) to generate. {job.skip_note}".strip())
        if not wait:
            self.stdout.write("queued; a worker will run it")
            return
        self._run_with_progress(job)

    def _run_with_progress(self, job: GenerationJob):
        runner = threading.Thread(target=_run_and_close, args=(job.pk,))
        runner.start()
        shown = None
        while runner.is_alive():
            runner.join(timeout=2)
            job.refresh_from_db()
            # A line per change, not per tick: slow local models would fill the screen.
            if (job.done, job.failed, job.status) != shown:
                shown = (job.done, job.failed, job.status)
                self._progress(job)
        job.refresh_from_db()
        if (job.done, job.failed, job.status) != shown:
            self._progress(job)
        if job.error:
            raise CommandError(f"job {job.pk} {job.status}: {job.error}")
        self.stdout.write(self.style.SUCCESS(f"job {job.pk} {job.status}"))

    def _progress(self, job: GenerationJob):
        progress = selectors.job_progress(job=job)
        rate = f"{progress.rate_per_minute:.0f}/min" if progress.rate_per_minute else "-"
        left = f"{progress.seconds_left}s left" if progress.seconds_left is not None else ""
        self.stdout.write(
            f"[{progress.percent:3d}%] {job.done} done, {job.failed} failed of {job.total}"
            f" · {rate} {left}".rstrip()
        )
