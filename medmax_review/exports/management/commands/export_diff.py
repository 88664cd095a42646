"""Print what changed between two dataset versions of a project (as CHANGELOG.md says it)."""

from django.core.management.base import BaseCommand, CommandError

from medmax_review.exports import changelog
from medmax_review.exports.build import dataset_version_folder
from medmax_review.exports.models import DatasetVersion
from medmax_review.projects.models import Project


def _version(project: Project, text: str) -> DatasetVersion:
    number = text.lower().removeprefix("v")
    if not number.isdigit():
        raise CommandError(f"{text!r} is not a version (v3, or 3)")
    version = DatasetVersion.objects.filter(project=project, number=int(number)).first()
    if version is None or version.status != DatasetVersion.DONE:
        raise CommandError(f"v{number}: no finished version of {project.slug} with that number")
    index = dataset_version_folder(version) / changelog.ROWS_FILE
    if not index.is_file():
        raise CommandError(f"v{number}: its folder has no {changelog.ROWS_FILE} (made before "
                           "versions kept one, or moved)")
    return version


class Command(BaseCommand):
    help = "What changed from version A to version B: rows added, removed (and why), edited."

    def add_arguments(self, parser):
        parser.add_argument("--project", required=True, help="project slug")
        parser.add_argument("old", help="version A, e.g. v1")
        parser.add_argument("new", help="version B, e.g. v2")

    def handle(self, *args, **opts):
        project = Project.objects.filter(slug=opts["project"]).first()
        if project is None:
            raise CommandError(f"--project: no project with slug {opts['project']!r}")
        old, new = _version(project, opts["old"]), _version(project, opts["new"])
        changes = changelog.index_diff(
            old=dataset_version_folder(old) / changelog.ROWS_FILE,
            new=dataset_version_folder(new) / changelog.ROWS_FILE,
            previous=old.number, current=new.number,
        )
        self.stdout.write(changelog.changelog_markdown(
            project=project.slug, summary=changes.as_manifest(), current=new.number))
