"""Load the bundled demo: a project, an admin and a reviewer, the sample records, candidates."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from medmax_review.core import accounts, medmax
from medmax_review.generation import services as generation
from medmax_review.projects import services as projects
from medmax_review.projects.models import ADMIN, REVIEWER
from medmax_review.sources.services import records_import

DEMO_DIR = Path(settings.BASE_DIR) / "demo_data"
DEMO_FILES = ["vqa_rad.jsonl", "slake.jsonl", "skimage.jsonl", "dicom"]
DEMO_GUIDELINES = """\
# Reviewing demo candidates

- Approve only if every statement in the response is supported by the image and source text.
- Reject with **wrong laterality** when left and right are swapped, **wrong modality** when
  the imaging technique is misnamed, **hallucination** for unsupported findings.
- Edit small slips (spelling, a missing unit) instead of rejecting.
- Never approve text that names or dates a patient.
"""
LOCAL_JOB_RECORDS = 12
DEMO_TASKS = [medmax.VQA, medmax.IMAGE_CAPTIONING, medmax.IMAGE_GENERATION]


class Command(BaseCommand):
    help = "Create the demo project, its admin and reviewer accounts, import and generate."

    def add_arguments(self, parser):
        parser.add_argument("--slug", default="demo")

    def handle(self, *args, slug, **options):
        project, created = projects.project_get_or_create(slug=slug, name="Demo: radiology VQA")
        if created:
            project.guidelines = DEMO_GUIDELINES
            project.save(update_fields=["guidelines"])
        self._account(project, "admin", ADMIN, superuser=True)
        self._account(project, "reviewer", REVIEWER)
        for name in DEMO_FILES:
            report = records_import(project=project, path=DEMO_DIR / name)
            self.stdout.write(
                f"{name}: {report.created} records imported, {report.duplicates} already there,"
                f" {len(report.errors)} problems"
            )
            for error in report.errors:
                self.stdout.write(f"  {error}")
        for task in DEMO_TASKS:
            if project.jobs.filter(task=task, backend="template").exists():
                continue
            job = generation.job_create(project=project, task=task, backend="template")
            generation.job_run(job_id=job.pk)
            job.refresh_from_db()
            self.stdout.write(f"{task}: {job.done} candidates generated, {job.failed} failed")
        self._local_model_job(project)

    def _local_model_job(self, project):
        """Queue a small job for the embedded SmolLM2 model; the worker runs it in the background."""
        if project.jobs.filter(backend="local").exists():
            return
        try:
            job = generation.job_create(
                project=project, task=medmax.VISUAL_CHAT, backend="local",
                filters={"limit": LOCAL_JOB_RECORDS}, parameters={"max_tokens": 160},
            )
        except generation.JobError as exc:
            self.stdout.write(f"local model job not queued: {exc}")
            return
        self.stdout.write(
            f"visual_chat: job {job.pk} queued for the local SmolLM2 model ({job.total} records);"
            " the worker runs it, watch it on the Generation page"
        )

    def _account(self, project, username, role, superuser=False):
        _, _, password = projects.member_add(
            project=project, username=username, role=role, credentialed=superuser,
            is_staff=superuser, is_superuser=superuser,
        )
        if password is None:
            self.stdout.write(f"account {username!r} exists; its password is unchanged")
        else:
            path = accounts.account_record(username=username, role=role, password=password)
            self.stdout.write(self.style.SUCCESS(
                f"created {role} account  username: {username}  password: {password}"
                f"  (shown once)  also kept in {path}, readable by you only"
            ))
