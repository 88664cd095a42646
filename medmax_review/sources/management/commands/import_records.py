"""python manage.py import_records PATH --project SLUG [--format ...] [--images DIR] [--strict] [--approved]"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from medmax_review.projects.services import project_get_or_create
from medmax_review.sources import services


class Command(BaseCommand):
    help = (
        "Import source records from a JSONL / CSV / MedMax JSONL file, a ZIP holding one with its "
        "images, a DICOM file or a folder of DICOM files. Creates the project if needed."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--format", default=services.AUTO, choices=services.FORMATS)
        parser.add_argument(
            "--images", type=Path, default=None,
            help="folder image paths are relative to (default: the data file's folder)",
        )
        parser.add_argument(
            "--strict", action="store_true", help="import nothing if any row is bad"
        )
        parser.add_argument(
            "--approved", action="store_true",
            help="MedMax rows: record the candidates as approved (a published dataset)",
        )

    def handle(self, *args, **options):
        path: Path = options["path"]
        if not path.exists():
            raise CommandError(f"{path}: no such file or folder")
        project, made = project_get_or_create(slug=options["project"])
        if made:
            self.stdout.write(f"created project {project.slug}")
        run = services.import_run_create(
            project=project,
            file_name=str(path),
            fmt=options["format"],
            options={"strict": options["strict"], "approved": options["approved"],
                     "images": str(options["images"] or "")},
        )
        report = services.records_import(
            project=project,
            path=path,
            fmt=options["format"],
            images_dir=options["images"],
            strict=options["strict"],
            approved=options["approved"],
            import_run=run,
        )
        services.import_run_finish(import_run=run, report=report)
        for error in report.errors:
            self.stderr.write(str(error))
        self.stdout.write(report.summary())
        if options["strict"] and report.errors:
            raise CommandError(f"{report.rejected} rows rejected; strict mode imported nothing")
