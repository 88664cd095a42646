"""Importing source records: files in, SourceRecords (and, for MedMax rows, Candidates) out.

Every bad row is reported by file, line and field and skipped; good rows are written in batches.
With strict=True the whole import is one transaction and nothing is kept if any row is bad.
"""

import contextlib
import json
import logging
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

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
from medmax_review.sources.readers import csvfile, dicom, jsonl, medmax
from medmax_review.sources.readers.base import ParsedRow, RowError, join_name

__all__ = [
    "FORMATS", "ImportReport", "RowError", "records_import", "import_run_create",
    "import_run_launch", "import_run_execute", "import_run_finish",
]

log = logging.getLogger(__name__)

AUTO, JSONL, CSV, MEDMAX, DICOM = "auto", "jsonl", "csv", "medmax", "dicom"
FORMATS = (AUTO, JSONL, CSV, MEDMAX, DICOM)
READERS = {JSONL: jsonl, CSV: csvfile, MEDMAX: medmax, DICOM: dicom}
DATA_SUFFIXES = {".jsonl": JSONL, ".json": JSONL, ".ndjson": JSONL, ".csv": CSV}
BATCH_SIZE = 500


@dataclass
class ImportReport:
    created: int = 0
    duplicates: int = 0
    candidates_created: int = 0
    rows: int = 0
    errors: list[RowError] = field(default_factory=list)
    rolled_back: bool = False

    @property
    def rejected(self) -> int:
        """Rows (or files / ZIP entries) refused, however many problems each had."""
        return len({(e.file, e.line) for e in self.errors})

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
    fmt: str
    images_dir: Path



def _sniff(path: Path, fmt: str) -> str:
    """The format of one data file: the given one, else from its suffix and first line."""
    if fmt != AUTO:
        return fmt
    if path.suffix.lower() == ".dcm" or dicom.is_dicom(path):
        return DICOM
    if path.suffix.lower() == ".csv":
        return CSV
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    first = json.loads(raw.decode("utf-8-sig"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    return JSONL  # the reader reports the bad line
                return MEDMAX if isinstance(first, dict) and medmax.looks_like_medmax(first) else JSONL
    return JSONL


def _folder_inputs(folder: Path, display: str, fmt: str, images_dir: Path | None) -> list[_Input]:
    """The data files of a folder (or unpacked ZIP), plus its DICOM files as one input."""
    found = []
    if fmt != DICOM:
        data_files = sorted(
            p for p in folder.rglob("*")
            if p.is_file() and not p.is_symlink() and p.suffix.lower() in DATA_SUFFIXES
        )
        found = [
            _Input(p, join_name(display, p.relative_to(folder)), _sniff(p, fmt), images_dir or p.parent)
            for p in data_files
        ]
    if fmt in (AUTO, DICOM) and dicom.files(folder):
        found.append(_Input(folder, display, DICOM, images_dir or folder))
    return found


def _inputs(
    *, path: Path, fmt: str, images_dir: Path | None, report: ImportReport,
    stack: contextlib.ExitStack,
) -> list[_Input]:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    display = path.name
    if not path.exists():
        report.errors.append(RowError(str(path), 0, "", "no such file or folder"))
        return []
    if path.is_dir():
        found = _folder_inputs(path, display, fmt, images_dir)
    elif fmt != DICOM and not dicom.is_dicom(path) and zipfile.is_zipfile(path):
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="medmax-import-")))
        report.errors += archives.zip_extract(path=path, target=folder, display=display)
        found = _folder_inputs(folder, display + ":", fmt, images_dir)
    else:
        found = [_Input(path, display, _sniff(path, fmt), images_dir or path.parent)]
    if not found:
        report.errors.append(RowError(display, 0, "", "no JSONL, CSV or DICOM files found"))
    return found


class _Importer:
    def __init__(self, *, project, report, import_run, approved, track_progress):
        self.project = project
        self.report = report
        self.import_run = import_run
        self.approved = approved
        self.track_progress = track_progress
        self.images: dict[Path, CheckedImage | str] = {}

    def run(self, inputs: list[_Input]) -> None:
        batch: list[tuple[ParsedRow, CheckedImage | None]] = []
        for source in inputs:
            for row in READERS[source.fmt].read(source.path, source.display):
                self.report.rows += 1
                checked = self._image_for(row, source) if not row.errors else None
                if row.errors:
                    self.report.errors += row.errors
                else:
                    batch.append((row, checked))
                if len(batch) >= BATCH_SIZE:
                    self._flush(batch, approved_note=self._note(source))
                    batch = []
                elif self.report.rows % BATCH_SIZE == 0:
                    self._progress()
            if batch:
                self._flush(batch, approved_note=self._note(source))
                batch = []
        self._progress()

    def _note(self, source: _Input) -> str:
        return f"imported as approved from {source.display}" if self.approved else ""

    def _image_for(self, row: ParsedRow, source: _Input) -> CheckedImage | None:
        if row.image_data is not None:
            try:
                main = image_file_write(image_check(data=row.image_data))
                presets = {
                    name: (image_file_write(image_check(data=data)), window)
                    for name, (data, window) in row.preset_images.items()
                }
            except ImageRejected as exc:
                row.error("image", str(exc))
                return None
            if presets:
                # Files are written; the bytes are dropped and the checked images kept for _write.
                row.preset_images = {name: checked for name, (checked, _) in presets.items()}
                row.dicom["presets"] = {
                    name: {"sha256": c.sha256, "window": window, "label": dicom.PRESETS[name]["label"]}
                    for name, (c, window) in presets.items()
                }
            return main
        if not row.image_ref:
            return None
        field_name = "image_path" if source.fmt == MEDMAX else "image"
        credentialed = row.record.get("credential") == "yes"
        base = source.images_dir.resolve()
        if Path(row.image_ref).is_absolute():
            row.error(field_name, f"image path {row.image_ref!r} must be relative to the images folder")
            return None
        target = (base / row.image_ref).resolve()
        if not target.is_relative_to(base):
            row.error(field_name, f"image path {row.image_ref!r} escapes the images folder")
            return None
        if target not in self.images:
            self.images[target] = self._load(target, row.image_ref)
        found = self.images[target]
        if isinstance(found, str):
            # Credentialed rows are often shared without their images: keep the text alone.
            if not (credentialed and found.startswith("image file not found")):
                row.error(field_name, found)
            return None
        return found

    @staticmethod
    def _load(target: Path, ref: str) -> CheckedImage | str:
        if not target.is_file():
            return f"image file not found: {ref}"
        limit = settings.MEDMAX_MAX_IMAGE_BYTES
        size = target.stat().st_size
        if size > limit:
            return f"image {ref} is {size} bytes, over the limit of {limit} bytes"
        try:
            # Written now, so a batch holds no image bytes in memory.
            return image_file_write(image_check(data=target.read_bytes()))
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
        # Keeps the cache of checked paths to one batch's worth.
        self.images.clear()
        self._progress()

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
            if row.candidate:
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
            specs.append(CandidateSpec(
                record_id=record.pk,
                credential=record.credential == "yes",
                template_ref="import",
                provenance={"import_file": row.file, "line": row.line},
                **row.candidate,
            ))
        return specs

    def _progress(self) -> None:
        if not (self.track_progress and self.import_run):
            return
        ImportRun.objects.filter(pk=self.import_run.pk).update(
            rows_done=self.report.rows,
            created=self.report.created,
            duplicates=self.report.duplicates,
            errors=[e.as_dict() for e in self.report.errors],
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
) -> ImportReport:
    """Import a JSONL / CSV / MedMax JSONL file, a ZIP of one with its images, or DICOM."""
    report = ImportReport()
    path = Path(path)
    images_dir = Path(images_dir) if images_dir else None
    with contextlib.ExitStack() as stack:
        inputs = _inputs(path=path, fmt=fmt, images_dir=images_dir, report=report, stack=stack)
        if import_run is not None:
            total = sum(READERS[i.fmt].count(i.path) for i in inputs)
            ImportRun.objects.filter(pk=import_run.pk).update(rows_total=total)
        # In strict mode progress writes would be rolled back with everything else.
        importer = _Importer(
            project=project, report=report, import_run=import_run, approved=approved,
            track_progress=not strict,
        )
        if not strict:
            importer.run(inputs)
        else:
            with transaction.atomic():
                importer.run(inputs)
                if report.errors:
                    transaction.set_rollback(True)
            if report.errors:
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
    import_run.options = {**import_run.options, "candidates_created": report.candidates_created,
                          "rolled_back": report.rolled_back}
    import_run.finished_at = timezone.now()
    import_run.save()
    return import_run


def import_run_execute(*, import_run_id: int) -> ImportRun | None:
    """Run a pending upload's import once; a second call (a redelivered task) does nothing."""
    claimed = ImportRun.objects.filter(pk=import_run_id, status=ImportRun.PENDING).update(
        status=ImportRun.RUNNING
    )
    if not claimed:
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
    return import_run_finish(import_run=run, report=report)
