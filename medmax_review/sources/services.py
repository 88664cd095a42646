"""Importing source records: files in, SourceRecords (and, for MedMax rows, Candidates) out.

Every bad row is reported by file, line and field and skipped; good rows are written in batches.
With strict=True the whole import is one transaction and nothing is kept if any row is bad.
"""

import contextlib
import hashlib
import logging
import shutil
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from medmax_review.core.leases import lease_claim, lease_resend_ids
from medmax_review.projects.models import Project
from medmax_review.review.candidates import CandidateSpec, candidates_create
from medmax_review.sources import archives
from medmax_review.sources.images import (
    CheckedImage,
    ImageRejected,
    image_check,
    image_file_write,
    images_store_many,
)
from medmax_review.sources.models import ImportRun, SourceRecord
from medmax_review.sources.readers import dicom, formats, reports
from medmax_review.sources.readers.base import (
    MISSING_TEXT,
    ParsedRow,
    RowError,
    join_name,
    needs_text,
)
from medmax_review.sources.readers.formats import AUTO, DICOM, FORMATS, REPORTS, FormatError
from medmax_review.sources.readers.mapping import MappingError
from medmax_review.sources.readers.mapping import parse as mapping_parse

__all__ = [
    "FORMATS", "ImportReport", "MappingError", "RowError", "records_import", "import_run_create",
    "import_run_launch", "import_run_execute", "import_run_finish", "mapping_parse",
]

log = logging.getLogger(__name__)

BATCH_SIZE = 500
IMAGE_CACHE_MAX = 50_000
IMAGE_FOLDER_WORDS = ("img", "image")
ERRORS_KEPT = 1000  # problems listed one by one; past this they are only counted
PROGRESS_EVERY = 1.0  # seconds between progress writes
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


@dataclass
class _Loaded:
    """An image file read once per import: checked and written, with DICOM details if any."""

    checked: CheckedImage
    dicom: dict = field(default_factory=dict)
    presets: dict = field(default_factory=dict)  # {name: CheckedImage}
    modality: str = ""
    meta: dict = field(default_factory=dict)


def _presets_write(presets: dict) -> tuple[dict, dict]:
    """Write CT preset PNGs: ({name: CheckedImage}, {name: {sha256, window, label}})."""
    written = {name: (image_file_write(image_check(data=data)), window)
               for name, (data, window) in presets.items()}
    return (
        {name: checked for name, (checked, _) in written.items()},
        {name: {"sha256": c.sha256, "window": window, "label": dicom.PRESETS[name]["label"]}
         for name, (c, window) in written.items()},
    )


class _Importer:
    def __init__(self, *, project, report, import_run, approved, track_progress, zips=()):
        self.project = project
        self.zips = list(zips)  # archives whose images are extracted as rows name them
        self.report = report
        self.import_run = import_run
        self.approved = approved
        self.track_progress = track_progress
        # Every image file the run has read, by resolved path: checked and written once.
        self.images: dict[Path, _Loaded | str] = {}
        self.subfolders: dict[Path, list[Path]] = {}
        self.embedded: dict[str, CheckedImage] = {}  # by the SHA-256 of the bytes
        self.last_progress = 0.0

    def run(self, inputs: list[_Input]) -> None:
        batch: list[tuple[ParsedRow, CheckedImage | None]] = []
        for source in inputs:
            extra = {"skip": set(self.images)} if source.fmt == DICOM else {}
            for row in source.reader.read(source.path, source.display, **extra):
                self.report.rows += 1
                checked = self._image_for(row, source) if not row.errors else None
                if not row.errors and needs_text(row):
                    row.error("", MISSING_TEXT + " (an image alone is imported only from DICOM)")
                if row.errors:
                    self.report.refuse(row.errors)
                else:
                    batch.append((row, checked))
                if len(batch) >= BATCH_SIZE:
                    self._flush(batch, approved_note=self._note(source))
                    batch = []
                else:
                    self._progress()
            if batch:
                self._flush(batch, approved_note=self._note(source))
                batch = []
        self._progress(force=True)

    def _note(self, source: _Input) -> str:
        return f"imported as approved from {source.display}" if self.approved else ""

    def _image_for(self, row: ParsedRow, source: _Input) -> CheckedImage | None:
        if row.image_data is not None:
            # Embedded bytes (Parquet) repeat across rows: hash first, decode each image once.
            digest = hashlib.sha256(row.image_data).hexdigest()
            if digest in self.embedded and not row.preset_images:
                row.image_data = None
                return self.embedded[digest]
            try:
                main = image_file_write(image_check(data=row.image_data))
                if not row.preset_images:
                    self.embedded[digest] = main
                if row.preset_images:
                    row.preset_images, row.dicom["presets"] = _presets_write(row.preset_images)
            except ImageRejected as exc:
                row.error("image", str(exc))
                return None
            row.image_data = None
            return main
        if not row.image_ref:
            return None
        field_name = "image_path" if source.fmt == formats.MEDMAX else "image"
        credentialed = row.record.get("credential") == "yes"
        base = source.images_dir.resolve()
        if Path(row.image_ref).is_absolute():
            row.error(field_name, f"image path {row.image_ref!r} must be relative to the images folder")
            return None
        target = (base / row.image_ref).resolve()
        if not target.is_relative_to(base):
            row.error(field_name, f"image path {row.image_ref!r} escapes the images folder")
            return None
        if not self._present(target):
            target = self._in_subfolder(base, row.image_ref) or target
        if target not in self.images:
            problem = self._unpack(target)
            self.images[target] = problem or self._load(target, row.image_ref)
        found = self.images[target]
        if isinstance(found, str):
            # Credentialed rows are often shared without their images: keep the text alone.
            if not (credentialed and found.startswith("image file not found")):
                row.error(field_name, found)
            return None
        if found.dicom:
            row.dicom = dict(found.dicom)
            row.preset_images = dict(found.presets)
            if not row.record.get("modality"):
                row.record["modality"] = found.modality[:40]
            row.record.setdefault("meta", {}).setdefault("dicom", found.meta)
        return found.checked

    def _present(self, target: Path) -> bool:
        return target.exists() or any(z.holds(target) for z in self.zips)

    def _unpack(self, target: Path) -> str:
        """Extract an archived image the first time a row names it ("" when done or not archived)."""
        for archive in self.zips:
            problem = archive.extract(target)
            if problem is not None:
                return f"{target.name}: {problem}" if problem else ""
        return ""

    def _in_subfolder(self, base: Path, ref: str) -> Path | None:
        """Datasets keep images one folder down (SLAKE's imgs/, "VQA_RAD Image Folder/"):
        a path not found in the images folder is looked for in its image subfolders."""
        if base not in self.subfolders:
            self.subfolders[base] = sorted(
                p for p in base.iterdir()
                if p.is_dir() and any(word in p.name.lower() for word in IMAGE_FOLDER_WORDS)
            )[:20]
        for folder in self.subfolders[base]:
            candidate = (folder / ref).resolve()
            if candidate.is_relative_to(base) and (candidate.is_file() or self._present(candidate)):
                return candidate
        return None

    @staticmethod
    def _load(target: Path, ref: str) -> _Loaded | str:
        if not target.is_file():
            return f"image file not found: {ref}"
        limit = settings.MEDMAX_MAX_IMAGE_BYTES
        size = target.stat().st_size
        if size > limit:
            return f"image {ref} is {size} bytes, over the limit of {limit} bytes"
        if dicom.is_dicom(target):
            rendered = dicom.load(target)
            if isinstance(rendered, tuple):
                return f"{ref}: {rendered[1]}"
            try:
                presets, described = _presets_write(rendered.presets)
                checked = image_file_write(image_check(data=rendered.png))
            except ImageRejected as exc:
                return f"{ref}: {exc}"
            return _Loaded(
                checked=checked, presets=presets, modality=rendered.modality, meta=rendered.meta,
                dicom={**rendered.info, "modality": rendered.modality,
                       **({"presets": described} if described else {})},
            )
        try:
            # Written now, so a batch holds no image bytes in memory.
            return _Loaded(checked=image_file_write(image_check(data=target.read_bytes())))
        except ImageRejected as exc:
            return f"{ref}: {exc}"

    def _flush(self, batch, *, approved_note: str) -> None:
        try:
            with transaction.atomic():
                self._write(batch, approved_note=approved_note)
        except IntegrityError:
            # A concurrent import of the same rows won the race; those rows are duplicates now.
            with transaction.atomic():
                self._write(batch, approved_note=approved_note)
        # Bounded: a run over millions of distinct images must not hold all their paths.
        if len(self.images) > IMAGE_CACHE_MAX:
            self.images.clear()
        if len(self.embedded) > IMAGE_CACHE_MAX:
            self.embedded.clear()
        self._progress(force=True)

    def _write(self, batch, *, approved_note: str) -> None:
        checked = [c for _, c in batch if c is not None]
        presets = [p for row, c in batch if c for p in row.preset_images.values()]
        assets = images_store_many(
            checked=checked + presets,
            modality={
                **{p.sha256: row.record.get("modality", "")
                   for row, c in batch if c for p in row.preset_images.values()},
                **{c.sha256: row.record.get("modality", "") for row, c in batch if c},
            },
            dicom={c.sha256: row.dicom for row, c in batch if c and row.dicom},
        )
        keys = {(row.record["source"], row.record["external_id"]) for row, _ in batch}
        existing: dict[tuple[str, str], SourceRecord | None] = {
            (source, external_id): None
            for source, external_id in SourceRecord.objects.filter(
                project=self.project,
                source__in={s for s, _ in keys},
                external_id__in={e for _, e in keys},
            ).values_list("source", "external_id")
        }
        fresh: list[SourceRecord] = []
        # Every row with a candidate, new record or not: candidates_create skips existing ones,
        # so a second MedMax row (another task) on a known record still gets its candidate.
        with_candidates: list[tuple[ParsedRow, tuple[str, str]]] = []
        duplicates = 0
        for row, image in batch:
            key = (row.record["source"], row.record["external_id"])
            if row.candidates:
                with_candidates.append((row, key))
            if key in existing:
                duplicates += 1
                continue
            existing[key] = SourceRecord(
                project=self.project,
                image=assets[image.sha256] if image else None,
                import_run=self.import_run,
                **row.record,
            )
            fresh.append(existing[key])
        SourceRecord.objects.bulk_create(fresh, batch_size=BATCH_SIZE)
        specs = self._candidate_specs(with_candidates, existing) if with_candidates else []
        made = (
            candidates_create(project=self.project, specs=specs, approved_note=approved_note)
            if specs else []
        )
        # Counted only once the batch is written: a retried batch must not count twice.
        self.report.duplicates += duplicates
        self.report.created += len(fresh)
        self.report.candidates_created += len(made)

    def _candidate_specs(self, rows, records) -> list[CandidateSpec]:
        missing = [key for _, key in rows if records[key] is None]
        known = {}
        if missing:
            known = {
                (r.source, r.external_id): r
                for r in SourceRecord.objects.filter(
                    project=self.project,
                    source__in={s for s, _ in missing},
                    external_id__in={e for _, e in missing},
                ).only("id", "source", "external_id", "credential")
            }
        specs = []
        for row, key in rows:
            record = records[key] or known[key]
            for candidate in row.candidates:
                fields = dict(candidate)
                provenance = {"import_file": row.file, row.unit: row.line,
                              **fields.pop("provenance", {})}
                specs.append(CandidateSpec(
                    record_id=record.pk,
                    credential=record.credential == "yes",
                    template_ref="import",
                    provenance=provenance,
                    **fields,
                ))
        return specs

    def _progress(self, *, force: bool = False) -> None:
        """Progress by time, not by row: the page polls once a second."""
        if not (self.track_progress and self.import_run):
            return
        now = time.monotonic()
        if not force and now - self.last_progress < PROGRESS_EVERY:
            return
        self.last_progress = now
        ImportRun.objects.filter(pk=self.import_run.pk).update(
            heartbeat_at=timezone.now(),
            rows_done=self.report.rows,
            created=self.report.created,
            duplicates=self.report.duplicates,
            errors=[e.as_dict() for e in self.report.errors],
            problems=self.report.problems,
            rejected=self.report.rejected,
        )


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
        importer = _Importer(
            project=project, report=report, import_run=import_run, approved=approved,
            track_progress=not strict, zips=zips,
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
    log.info("import of %s into %s by %s: %s", path.name, project.slug, user, report.summary())
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
