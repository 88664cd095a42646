"""Export a project's approved candidates as a new DatasetVersion, from the command line."""

from django.core.management.base import BaseCommand, CommandError

from medmax_review.exports import services
from medmax_review.exports.models import DatasetVersion
from medmax_review.projects.models import Project


class Command(BaseCommand):
    help = (
        "Export approved candidates as a new numbered DatasetVersion. With --out DIR the files"
        " go to DIR/v<N>/ (never over an earlier export), else to MEDIA_ROOT/exports/<slug>/v<N>/."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("--out", help="folder to write v<N>/ into")
        parser.add_argument("--format", choices=services.FORMATS, default="medmax")
        parser.add_argument("--split", help="train,validation,test proportions, e.g. 0.9,0.05,0.05")
        parser.add_argument("--provenance", action="store_true", help="add provenance columns")
        parser.add_argument("--images", choices=services.IMAGE_MODES, default="copy")
        parser.add_argument("--task", action="append", default=[], help="repeatable")
        parser.add_argument("--source", action="append", default=[], help="repeatable")
        parser.add_argument("--license", action="append", default=[], help="keep only these")
        parser.add_argument("--exclude-license", action="append", default=[], help="leave out")
        parser.add_argument("--min-agreeing", type=int, default=0)
        parser.add_argument("--since", help="decided on or after this date (YYYY-MM-DD)")
        parser.add_argument("--until", help="decided on or before this date (YYYY-MM-DD)")
        parser.add_argument(
            "--task-names", choices=services.TASK_NAMES, default="canonical",
            help="canonical (vqa) or source: each record's imported spelling (VQA), and a"
                 " re-exported MedMax row's own empty image_path",
        )

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"--project: no project with slug {opts['project']!r}")
        options = {
            "format": opts["format"], "images": opts["images"], "split": opts["split"],
            "provenance": opts["provenance"], "tasks": opts["task"], "sources": opts["source"],
            "licenses": opts["license"], "exclude_licenses": opts["exclude_license"],
            "min_agreeing": opts["min_agreeing"], "since": opts["since"], "until": opts["until"],
            "task_names": opts["task_names"],
        }
        try:
            version = services.dataset_version_create(
                project=project, options=options, out_dir=opts["out"]
            )
        except services.ExportOptionsError as exc:
            raise CommandError(str(exc)) from exc
        version = services.dataset_version_build(version_id=version.pk)
        folder = services.dataset_version_folder(version)
        if version.status != DatasetVersion.DONE:
            raise CommandError(f"export v{version.number} failed: {version.error}")
        manifest = version.manifest
        self.stdout.write(self.style.SUCCESS(
            f"v{version.number}: {manifest['rows']} rows written to {folder}"
        ))
        for name, count in manifest["counts"]["split"].items():
            self.stdout.write(f"  {name}: {count} rows")
        if manifest["empty_splits"]:
            self.stdout.write(f"  no rows, so no file: {', '.join(manifest['empty_splits'])}")
        excluded = manifest["excluded"]
        if excluded["rows"]:
            self.stdout.write(self.style.WARNING(
                f"  {excluded['rows']} rows left out (listed in manifest.json):"
            ))
            for reason, count in excluded["reasons"].items():
                self.stdout.write(f"    {count} x {reason}")
