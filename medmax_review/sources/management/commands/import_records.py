"""python manage.py import_records PATH --project SLUG [--format ...] [--map F=C ...] [--images DIR]
[--strict] [--approved] [--admin USERNAME]"""

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from medmax_review.projects.models import ADMIN, Project
from medmax_review.projects.services import membership_set, project_get_or_create
from medmax_review.sources import services

PROBLEMS_SHOWN = 50


class Command(BaseCommand):
    help = (
        "Import source records: JSON lines, JSON arrays, CSV/TSV, Parquet (Hugging Face datasets),"
        " MedMax rows, LLaVA conversations, radiology reports with their images, DICOM files; a"
        " folder of them or a ZIP holding one with its images. Creates the project if needed."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--format", default=services.AUTO, choices=services.FORMATS)
        parser.add_argument(
            "--map", nargs="+", default=[], metavar="FIELD=COLUMN",
            help="the dataset's own columns for image, question, answer, caption, inline_mention, "
                 "report, language, modality, id, source, license (e.g. image=img_name lang=q_lang)",
        )
        parser.add_argument(
            "--images", type=Path, default=None,
            help="folder image paths are relative to (default: the data file's folder)",
        )
        parser.add_argument(
            "--strict", action="store_true", help="import nothing if any row is bad"
        )
        parser.add_argument(
            "--approved", action="store_true",
            help="rows that carry a response (MedMax, LLaVA): record them as approved",
        )
        parser.add_argument(
            "--admin", default=None,
            help="username made admin of a project this command creates (default: the only "
                 "superuser)",
        )

    def handle(self, *args, **options):
        path: Path = options["path"]
        if not path.exists():
            raise CommandError(f"{path}: no such file or folder")
        try:
            mapping = services.mapping_parse(options["map"])
        except services.MappingError as exc:
            raise CommandError(f"--map {exc}") from None
        is_new = not Project.objects.filter(slug=options["project"]).exists()
        admin = self._admin(options["admin"]) if is_new else None
        with transaction.atomic():
            project, made = project_get_or_create(slug=options["project"])
            if made and admin is not None:
                membership_set(project=project, user=admin, role=ADMIN)
        run = services.import_run_create(
            project=project,
            file_name=str(path),
            fmt=options["format"],
            options={"strict": options["strict"], "approved": options["approved"],
                     "images": str(options["images"] or ""), "map": mapping},
        )
        report = services.records_import(
            project=project,
            path=path,
            fmt=options["format"],
            images_dir=options["images"],
            strict=options["strict"],
            approved=options["approved"],
            import_run=run,
            mapping=mapping,
        )
        self._problems(report)
        if report.imported_nothing and made:
            # Nothing came in: leave no empty project behind (and so no run in it).
            project.delete()
        else:
            services.import_run_finish(import_run=run, report=report)
        if options["strict"] and report.problems:
            raise CommandError(f"{report.rejected} rows rejected; strict mode imported nothing")
        if report.imported_nothing:
            raise CommandError(f"{path}: no row could be imported ({report.summary()})")
        if made:
            who = f"; admin: {admin.username}" if admin else (
                "; no admin: pass --admin USERNAME, or add one on the project's members page")
            self.stdout.write(f"created project {project.slug}{who}")
        self.stdout.write(report.summary())

    def _admin(self, username: str | None):
        users = get_user_model().objects
        if username:
            user = users.filter(username=username).first()
            if user is None:
                raise CommandError(f"--admin: no user named {username!r}")
            return user
        superusers = list(users.filter(is_superuser=True, is_active=True)[:2])
        return superusers[0] if len(superusers) == 1 else None

    def _problems(self, report) -> None:
        """The first problems one line each, then how many more there were."""
        for error in report.errors[:PROBLEMS_SHOWN]:
            self.stderr.write(str(error))
        more = report.problems - min(len(report.errors), PROBLEMS_SHOWN)
        if more > 0:
            self.stderr.write(f"... and {more} more problem{'s' if more != 1 else ''} "
                              f"(the first {len(report.errors)} are listed on the import page)")
