"""Importing source records: files in, SourceRecords (and, for MedMax rows, Candidates) out.

Every bad row is reported by file, line and field and skipped; good rows are written in batches.
With strict=True the whole import is one transaction and nothing is kept if any row is bad.
"""

import contextlib
import logging
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from medmax_review.core.leases import lease_claim, lease_resend_ids
from medmax_review.projects.models import Project
from medmax_review.sources import archives
from medmax_review.sources.image_pool import ImageChecker
from medmax_review.sources.importer import Importer
from medmax_review.sources.models import ImportRun
from medmax_review.sources.readers import dicom, formats, reports
from medmax_review.sources.readers.base import RowError, join_name
from medmax_review.sources.readers.formats import AUTO, DICOM, FORMATS, REPORTS, FormatError
from medmax_review.sources.readers.mapping import MappingError
from medmax_review.sources.readers.mapping import parse as mapping_parse

__all__ = [
    "FORMATS", "ImportReport", "MappingError", "RowError", "records_import", "import_run_create",
    "import_run_launch", "import_run_execute", "import_run_finish", "mapping_parse",
]

log = logging.getLogger(__name__)

ERRORS_KEPT = 1000  # problems listed one by one; past this they are only counted
# Files in a dataset folder that describe it rather than hold rows.
METADATA_FILES = {"dataset_info.json", "dataset_dict.json", "state.json", "manifest.json",
                  "dataset_infos.json", "package.json"}


@dataclass
class ImportReport:
    created: int = 0
    duplicates: int = 0
    candidates_created: int = 0
    rows: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first ERRORS_KEPT problems
    problems: int = 0
    rejected: int = 0  # rows (or files, ZIP entries) refused, however many problems each had
    rolled_back: bool = False

    def refuse(self, errors: list[RowError]) -> None:
        """One refused row (or file) with its problems."""
        if not errors:
            return
        self.rejected += 1
        self.problems += len(errors)
        room = ERRORS_KEPT - len(self.errors)
        if room > 0:
            self.errors += errors[:room]

    @property
    def unlisted(self) -> int:
        return self.problems - len(self.errors)

    @property
    def imported_nothing(self) -> bool:
        return not (self.created or self.duplicates or self.candidates_created)

    def summary(self) -> str:
        text = (
            f"{self.rows} rows read: {self.created} records created, {self.duplicates} duplicates "
            f"skipped, {self.candidates_created} candidates created, {self.rejected} rejected"
        )
        if self.rolled_back:
            text += " (strict mode: nothing was imported)"
        return text


@dataclass(frozen=True)
class _Input:
    path: Path
    display: str
    fmt: str  # DICOM, REPORTS, or the name of the data file's reader
    images_dir: Path
    reader: object  # formats.Reader, or the dicom / reports module


def _data_input(path: Path, display: str, fmt: str, images_dir: Path, user_map: dict,
                report: ImportReport) -> _Input | None:
    kind = formats.kind_of(path) if fmt == AUTO else fmt
    if fmt == AUTO and kind in (DICOM, REPORTS):
        return _Input(path, display, kind, images_dir, dicom if kind == DICOM else reports)
    if fmt in (DICOM, REPORTS) and not path.is_dir():
        if fmt == REPORTS and formats.kind_of(path) != REPORTS:
            fmt = AUTO  # a CSV of reports with a file column: rows like any other
        else:
            return _Input(path, display, fmt, images_dir, dicom if fmt == DICOM else reports)
    try:
        reader = formats.reader_for(path, display, fmt, user_map)
    except FormatError as exc:
        report.refuse([RowError(display, 0, "", str(exc))])
        return None
    except (OSError, UnicodeDecodeError) as exc:
        report.refuse([RowError(display, 0, "", f"cannot be read ({exc})")])
        return None
    return _Input(path, display, reader.name, images_dir, reader)


def _folder_inputs(folder: Path, display: str, fmt: str, images_dir: Path | None,
                   user_map: dict, report: ImportReport) -> list[_Input]:
    """The data files of a folder (or unpacked ZIP), its reports, then its DICOM files.

    A DICOM file that a row or a report points at is read through it, not again on its own.
    """
    found: list[_Input] = []
    if fmt not in (DICOM, REPORTS):
        data_files = sorted(
            p for p in folder.rglob("*")
            if p.is_file() and not p.is_symlink() and p.suffix.lower() in formats.DATA_SUFFIXES
            and p.name.lower() not in METADATA_FILES and not p.name.startswith(".")
        )
        for p in data_files:
            made = _data_input(p, join_name(display, p.relative_to(folder)), fmt,
                               images_dir or p.parent, user_map, report)
            if made:
                found.append(made)
    if (fmt == REPORTS and reports.report_files(folder)
            or fmt == AUTO and reports.has_reports(folder)):
        found.append(_Input(folder, display, REPORTS, images_dir or folder, reports))
    # Last, so the DICOM files that rows or reports already read are known and skipped.
    if fmt in (AUTO, DICOM) and dicom.files(folder):
        found.append(_Input(folder, display, DICOM, images_dir or folder, dicom))
    return found


def _inputs(
    *, path: Path, fmt: str, images_dir: Path | None, user_map: dict, report: ImportReport,
    stack: contextlib.ExitStack, zips: list,
) -> list[_Input]:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    display = path.name
    if not path.exists():
        report.refuse([RowError(str(path), 0, "", "no such file or folder")])
        return []
    if path.is_dir():
        found = _folder_inputs(path, display, fmt, images_dir, user_map, report)
    elif fmt != DICOM and not dicom.is_dicom(path) and zipfile.is_zipfile(path):
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medmax-import-")))
        archive = archives.ZipSource(path=path, target=folder, display=display)
        stack.callback(archive.close)
        archive.extract_data()
        for error in archive.errors:
            report.refuse([error])
        zips.append(archive)
        found = _folder_inputs(folder, display + ":", fmt, images_dir, user_map, report)
    else:
        made = _data_input(path, display, fmt, images_dir or path.parent, user_map, report)
        found = [made] if made else []
    if not found and not report.problems:
        report.refuse([RowError(display, 0, "", "no JSON, JSONL, CSV, Parquet, report or DICOM "
                                                "files found")])
    return found


def records_import(
    *,
    project: Project,
    path: Path,
    fmt: str = AUTO,
    images_dir: Path | None = None,
    strict: bool = False,
    approved: bool = False,
    user=None,
    import_run: ImportRun | None = None,
    mapping: dict | None = None,
) -> ImportReport:
    """Import a data file (JSON, JSONL, CSV, Parquet; plain records, MedMax rows or LLaVA
    conversations), reports, DICOM, a folder of them or a ZIP of one with its images.

    `mapping` ({field: column}, see readers.mapping) names a dataset's own columns.
    """
    report = ImportReport()
    path = Path(path)
    images_dir = Path(images_dir) if images_dir else None
    with contextlib.ExitStack() as stack:
        zips: list[archives.ZipSource] = []
        inputs = _inputs(path=path, fmt=fmt, images_dir=images_dir, user_map=mapping or {},
                         report=report, stack=stack, zips=zips)
        if import_run is not None:
            total = sum(i.reader.count(i.path) for i in inputs)
            ImportRun.objects.filter(pk=import_run.pk).update(rows_total=total)
        # In strict mode progress writes would be rolled back with everything else.
        checker = stack.enter_context(ImageChecker())
        importer = Importer(
            project=project, report=report, import_run=import_run, approved=approved,
            track_progress=not strict, zips=zips, checker=checker,
        )
        if not strict:
            importer.run(inputs)
        else:
            with transaction.atomic():
                importer.run(inputs)
                if report.problems:
                    transaction.set_rollback(True)
            if report.problems:
                report.rolled_back = True
                report.created = report.candidates_created = report.duplicates = 0
    log.info("import of %s into %s by %s: %s (%s)", path.name, project.slug, user, report.summary(),
             checker.summary())
    return report


def import_run_create(
    *, project: Project, file_name: str, fmt: str, options: dict, user=None, upload_path: str = ""
) -> ImportRun:
    return ImportRun.objects.create(
        project=project,
        file_name=file_name[:500],
        format=fmt,
        options=options,
        launched_by=user if user is not None and user.is_authenticated else None,
        upload_path=upload_path,
    )


def upload_save(*, upload) -> str:
    """Store an uploaded file under MEDIA_ROOT/uploads/<random>/ and return its relative path."""
    name = get_valid_filename(Path(upload.name).name) or "upload"
    relative = Path("uploads") / uuid.uuid4().hex / name
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True)
    with open(target, "wb") as fh:
        for chunk in upload.chunks():
            fh.write(chunk)
    return str(relative)


def import_run_launch(*, project: Project, upload, fmt: str, options: dict, user=None) -> ImportRun:
    """Save the upload, record a pending run and import it in a worker once this commits."""
    from medmax_review.sources.tasks import import_run_execute as import_run_execute_task

    with transaction.atomic():
        run = import_run_create(
            project=project, file_name=upload.name, fmt=fmt, options=options, user=user,
            upload_path=upload_save(upload=upload),
        )
        import_run_execute_task.delay_on_commit(run.pk)
    return run


def import_run_finish(*, import_run: ImportRun, report: ImportReport) -> ImportRun:
    import_run.status = ImportRun.DONE
    import_run.rows_done = report.rows
    import_run.rows_total = max(import_run.rows_total, report.rows)
    import_run.created = report.created
    import_run.duplicates = report.duplicates
    import_run.errors = [e.as_dict() for e in report.errors]
    import_run.problems = report.problems
    import_run.rejected = report.rejected
    import_run.options = {**import_run.options, "candidates_created": report.candidates_created,
                          "rolled_back": report.rolled_back}
    import_run.finished_at = timezone.now()
    import_run.save()
    return import_run


def import_run_execute(*, import_run_id: int) -> ImportRun | None:
    """Run a pending upload's import once; a second call (a redelivered task) does nothing,
    unless the worker that had it went silent: then this one takes it over."""
    claimed = lease_claim(
        model=ImportRun, pk=import_run_id, pending=ImportRun.PENDING, running=ImportRun.RUNNING,
        stale_seconds=settings.IMPORT_STALE_SECONDS,
        # A takeover starts the count again; the rows the dead worker wrote are duplicates now.
        rows_done=0, created=0, duplicates=0, errors=[], problems=0, rejected=0,
    )
    if claimed is None:
        return None
    run = ImportRun.objects.select_related("project", "launched_by").get(pk=import_run_id)
    options = run.options or {}
    try:
        report = records_import(
            project=run.project,
            path=Path(settings.MEDIA_ROOT) / run.upload_path,
            fmt=run.format,
            strict=bool(options.get("strict")),
            approved=bool(options.get("approved")),
            mapping=options.get("map") or {},
            user=run.launched_by,
            import_run=run,
        )
    except Exception as exc:
        log.exception("import run %s failed", run.pk)
        run.refresh_from_db()
        run.status = ImportRun.FAILED
        run.errors = [*run.errors, {"file": run.file_name, "line": 0, "field": "",
                                    "message": f"import stopped: {type(exc).__name__}: {exc}"}]
        run.finished_at = timezone.now()
        run.save()
        return run
    run.refresh_from_db()
    finished = import_run_finish(import_run=run, report=report)
    if not report.rolled_back and not report.imported_nothing:
        upload_remove(import_run=finished)  # kept after a failure, for a second look
    return finished


def upload_remove(*, import_run: ImportRun) -> bool:
    """Delete a run's uploaded file (and its random folder); the run keeps its report."""
    if not import_run.upload_path:
        return False
    folder = (Path(settings.MEDIA_ROOT) / import_run.upload_path).parent
    uploads = (Path(settings.MEDIA_ROOT) / "uploads").resolve()
    if folder.resolve().parent == uploads:  # only ever uploads/<random>/
        shutil.rmtree(folder, ignore_errors=True)
    ImportRun.objects.filter(pk=import_run.pk).update(upload_path="")
    return True


def uploads_sweep(*, now=None) -> int:
    """Remove the uploads of finished runs older than MEDMAX_FAILED_UPLOAD_KEEP_HOURS."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.MEDMAX_FAILED_UPLOAD_KEEP_HOURS)
    runs = ImportRun.objects.filter(status__in=ImportRun.FINISHED, finished_at__lt=cutoff) \
        .exclude(upload_path="")
    removed = 0
    for run in runs.iterator():
        removed += upload_remove(import_run=run)
    return removed


def import_runs_resend() -> int:
    """Queue again the imports whose message was lost or whose worker died (uploads only: a
    command-line import has no file to read again)."""
    from medmax_review.sources.tasks import import_run_execute as import_run_execute_task

    ids = lease_resend_ids(model=ImportRun, pending=ImportRun.PENDING, running=ImportRun.RUNNING,
                           stale_seconds=settings.IMPORT_STALE_SECONDS,
                           queryset=ImportRun.objects.exclude(upload_path=""))
    for run_id in ids:
        import_run_execute_task.delay(run_id)
    return len(ids)
