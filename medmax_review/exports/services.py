"""Exports: numbered immutable DatasetVersions, created here and built by `build`.

The pieces live in their own modules: `options` checks what may be asked for, `build` is the
streaming engine (claims, heartbeats, takeover), `writers` holds one module per format,
`manifest` the counts and manifest.json, `cards` the README.md and ATTRIBUTION.md notices and
`files` the atomic files and archives. The names callers used from here stay importable here.
"""

import os
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from medmax_review.core.audit import audit_record
from medmax_review.core.leases import lease_resend_ids
from medmax_review.core.models import AuditEvent
from medmax_review.exports.build import (
    IMAGES_DIR,
    MANIFEST,
    SPLITS,
    dataset_version_build,
    dataset_version_claim,
    dataset_version_folder,
    split_of,
    version_leftovers_remove,
)
from medmax_review.exports.models import DatasetVersion
from medmax_review.exports.options import (
    IMAGE_MODES,
    TASK_NAMES,
    ExportOptionsError,
    export_options_clean,
)
from medmax_review.exports.writers import FORMATS as WRITERS
from medmax_review.projects.models import Project

__all__ = [
    "FORMATS", "IMAGE_MODES", "MANIFEST", "SPLITS", "TASK_NAMES", "ExportOptionsError",
    "dataset_version_build", "dataset_version_claim", "dataset_version_create",
    "dataset_version_enqueue", "dataset_version_folder", "dataset_version_retry",
    "export_options_clean", "split_of", "version_files", "version_files_listed",
    "version_leftovers_remove",
]

FORMATS = tuple(WRITERS)


def dataset_version_create(
    *, project: Project, user=None, options: dict, out_dir: str | os.PathLike | None = None
) -> DatasetVersion:
    """A new pending version numbered max+1 in the project.

    Files go to MEDIA_ROOT/exports/<slug>/v<N>/, or with `out_dir` to <out_dir>/v<N>/ (a
    version folder of its own there too, so a second export never overwrites the first).
    """
    clean = export_options_clean(options)
    with transaction.atomic():
        # Lock the project row: two exports launched at once queue here instead of both
        # reading the same max(number); the unique constraint backs this up.
        Project.objects.select_for_update().filter(pk=project.pk).first()
        top = DatasetVersion.objects.filter(project=project).aggregate(top=Max("number"))["top"]
        number = (top or 0) + 1
        if out_dir:
            path = str(Path(out_dir).resolve() / f"v{number}")
        else:
            path = f"exports/{project.slug}/v{number}"
        version = DatasetVersion.objects.create(
            project=project, number=number, format=clean["format"], options=clean,
            path=path, created_by=user,
        )
        audit_record(AuditEvent.EXPORT_CREATED, actor=user, project=project,
                     target=f"v{number}", format=clean["format"])
        return version


def dataset_version_enqueue(*, version: DatasetVersion) -> None:
    """Build the version in a worker once the transaction that created it commits."""
    from medmax_review.exports.tasks import build_dataset_version

    build_dataset_version.delay_on_commit(version.pk)


def dataset_version_retry(*, version: DatasetVersion) -> bool:
    """Queue the build of this same version again: a failed one, or a running one whose
    worker went silent (in case its task was lost with the broker). False if neither."""
    stale = timezone.now() - timedelta(seconds=settings.EXPORT_STALE_SECONDS)
    mine = DatasetVersion.objects.filter(pk=version.pk)
    changed = mine.filter(status=DatasetVersion.FAILED).update(
        status=DatasetVersion.PENDING, error="", finished_at=None, rows_done=0,
    ) or mine.filter(status=DatasetVersion.RUNNING, heartbeat_at__lt=stale).exists()
    if changed:
        dataset_version_enqueue(version=version)
    return bool(changed)


def version_files(version: DatasetVersion) -> list[str]:
    """The files of a finished version that may be downloaded, manifest last."""
    if version.status != DatasetVersion.DONE:
        return []
    return sorted(version.manifest.get("files", {})) + [MANIFEST]


def version_files_listed(version: DatasetVersion) -> tuple[list[tuple[str, dict | None]], int]:
    """The files of a finished version as the page lists them: (name, {sha256, size}) for each
    file but the images (the manifest itself has no entry: None), and the number of images."""
    entries = version.manifest.get("files", {})
    files = [
        (name, entries.get(name)) for name in version_files(version)
        if not name.startswith(f"{IMAGES_DIR}/")
    ]
    return files, sum(1 for name in entries if name.startswith(f"{IMAGES_DIR}/"))


def versions_resend() -> int:
    """Queue again the versions whose message was lost or whose worker died."""
    ids = lease_resend_ids(model=DatasetVersion, pending=DatasetVersion.PENDING,
                           running=DatasetVersion.RUNNING,
                           stale_seconds=settings.EXPORT_STALE_SECONDS)
    for version_id in ids:
        dataset_version_enqueue(version=DatasetVersion(pk=version_id))
    return len(ids)
