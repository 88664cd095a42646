"""The rows of an import, a batch at a time: images looked up by the hash of their bytes,
records written with COPY (see core.bulk_write), the candidates MedMax rows carry created with them.

Each image file the run has not met is read and hashed once; one query per batch finds which
hashes are stored already, and only the others are decoded, by the image pool while the next
batch is read: a batch's rows are written once the next one is in hand, by a thread of their
own (core.write_behind) while this one reads on. Progress is written once a second, not per
batch.
"""

import hashlib
import os
import stat
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from medmax_review.core.bulk_write import rows_insert
from medmax_review.core.gc_frozen import gc_frozen
from medmax_review.core.write_behind import WriteBehind
from medmax_review.review.candidates import CandidateSpec, candidates_create
from medmax_review.sources.image_pool import Checking, ImageChecker
from medmax_review.sources.images import (
    CheckedImage,
    ImageRejected,
    image_check,
    image_file_write,
    images_add,
    images_store_many,
    images_stored,
)
from medmax_review.sources.models import ImportRun, SourceRecord
from medmax_review.sources.readers import dicom, formats
from medmax_review.sources.readers.base import MISSING_TEXT, ParsedRow, needs_text
from medmax_review.sources.selectors import records_by_key

# Rows per batch: each batch costs a few round trips and a commit, whatever its size. A batch
# is also cut once it has read BATCH_IMAGE_BYTES of new image files, to bound memory.
BATCH_SIZE = settings.IMPORT_BATCH_ROWS
BATCH_IMAGE_BYTES = 128 * 1024 * 1024
# Batches read but not yet written, while the pool checks their new images.
IN_FLIGHT = 2
IMAGE_FOLDER_WORDS = ("img", "image")
PROGRESS_EVERY = 1.0  # seconds between progress writes


@dataclass
class _Loaded:
    """A DICOM file read once per import: rendered, checked and written, with its details."""

    checked: CheckedImage
    dicom: dict = field(default_factory=dict)
    presets: dict = field(default_factory=dict)  # {name: CheckedImage}
    modality: str = ""
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Pending:
    """A row's image, settled by the hash of its bytes before the row's batch is written."""

    key: object  # into Importer.assets
    field: str


@dataclass
class _Unsettled:
    """An image read and hashed, not yet known to be stored; its bytes are let go once its
    batch has looked it up."""

    sha256: str
    data: bytes | None
    ref: str  # the path as the first row gave it, for messages; "" for embedded bytes
    modality: str


@dataclass
class _Lookup:
    """A batch's new images: those found stored, and the checking of the others."""

    keys: list
    stored: dict[str, int]
    new: list[str]
    sizes: dict[str, tuple[int, str]]  # sha256 -> (bytes, modality) of each new image
    checking: Checking | None


def _inside(path: str, folder: str) -> bool:
    """Whether a resolved path is the resolved folder or lies below it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def presets_write(presets: dict) -> tuple[dict, dict]:
    """Write CT preset PNGs: ({name: CheckedImage}, {name: {sha256, window, label}})."""
    written = {name: (image_file_write(image_check(data=data)), window)
               for name, (data, window) in presets.items()}
    return (
        {name: checked for name, (checked, _) in written.items()},
        {name: {"sha256": c.sha256, "window": window, "label": dicom.PRESETS[name]["label"]}
         for name, (c, window) in written.items()},
    )


class Importer:
    def __init__(self, *, project, report, import_run, approved, track_progress, checker: ImageChecker,
                 zips=()):
        self.project = project
        self.zips = list(zips)  # archives whose images are extracted as rows name them
        self.report = report
        self.import_run = import_run
        self.approved = approved
        self.track_progress = track_progress
        self.checker = checker
        # DICOM files and files that cannot be used, by resolved path: read once per run.
        self.images: dict[str, _Loaded | str] = {}
        # Plain images for the whole run, by (images folder, path as written) or by the SHA-256
        # of embedded bytes: unsettled until their batch looked them up, then the ImageAsset
        # id, or why the image was refused.
        self.assets: dict[object, _Unsettled | int | str] = {}
        self.subfolders: dict[str, list[Path]] = {}
        self.bases: dict[Path, str] = {}  # images folder -> resolved, as text
        self.folders: dict[tuple[str, str], str] = {}  # (images folder, subfolder) -> resolved
        self.waiting: deque[tuple] = deque()  # (batch, lookup, approved note), oldest first
        self.batch_bytes = 0  # of image files read for the batch being read
        self.last_progress = float("-inf")  # the first row is shown at once
        self.progress_lock = threading.Lock()  # progress is written by the reader and the writer
        self.writes: WriteBehind | None = None
        self.errors_written = 0
        self.max_image_bytes = settings.MEDMAX_MAX_IMAGE_BYTES  # read once: settings are slow to read

    def run(self, inputs) -> None:
        with gc_frozen(), WriteBehind() as self.writes:
            self._run(inputs)
        self._progress(force=True)  # every write is committed once the block is left

    def _run(self, inputs) -> None:
        batch: list[tuple[ParsedRow, object]] = []
        for source in inputs:
            extra = {"skip": set(map(Path, self.images))} if source.fmt == formats.DICOM else {}
            for row in source.reader.read(source.path, source.display, **extra):
                self.report.rows += 1
                batch.append((row, self._image_for(row, source) if not row.errors else None))
                if len(batch) >= BATCH_SIZE or self.batch_bytes >= BATCH_IMAGE_BYTES:
                    self._flush(batch, approved_note=self._note(source))
                    batch = []
                else:
                    self._progress()
            if batch:
                self._flush(batch, approved_note=self._note(source))
                batch = []
            self._drain()

    def _note(self, source) -> str:
        return f"imported as approved from {source.display}" if self.approved else ""

    def _image_for(self, row: ParsedRow, source) -> CheckedImage | _Pending | None:
        modality = row.record.get("modality", "")
        if row.image_data is not None:
            data, row.image_data = row.image_data, None
            if row.preset_images or row.dicom:
                # Rendered DICOM: stored with its window and presets, checked here.
                try:
                    main = image_file_write(image_check(data=data))
                    if row.preset_images:
                        row.preset_images, row.dicom["presets"] = presets_write(row.preset_images)
                except ImageRejected as exc:
                    row.error("image", str(exc))
                    return None
                return main
            # Embedded bytes (Parquet) repeat across rows: hashed here, decoded once if new.
            digest = hashlib.sha256(data).hexdigest()
            if digest not in self.assets:
                self.assets[digest] = _Unsettled(digest, data, "", modality)
                self.batch_bytes += len(data)
            return _Pending(digest, "image")
        if not row.image_ref:
            return None
        field_name = "image_path" if source.fmt == formats.MEDMAX else "image"
        base = self.bases.get(source.images_dir) or self.bases.setdefault(
            source.images_dir, str(source.images_dir.resolve()))
        key = (base, row.image_ref)
        if key in self.assets:
            return _Pending(key, field_name)
        target = self._target(row, base, field_name)
        if target is None:
            return None
        found = self.images.get(target) or self._first_look(target, row.image_ref, modality)
        if isinstance(found, _Unsettled):
            self.assets[key] = found
            self.batch_bytes += len(found.data)
            return _Pending(key, field_name)
        if isinstance(found, str):
            # Credentialed rows are often shared without their images: keep the text alone.
            if not (row.record.get("credential") == "yes" and found.startswith("image file not found")):
                row.error(field_name, found)
            return None
        row.dicom = dict(found.dicom)
        row.preset_images = dict(found.presets)
        if not row.record.get("modality"):
            row.record["modality"] = found.modality[:40]
        row.record.setdefault("meta", {}).setdefault("dicom", found.meta)
        return found.checked

    def _target(self, row: ParsedRow, base: str, field_name: str) -> str | None:
        """The resolved path of the row's image, as text: paths are worked out for every row,
        and pathlib's objects cost more than the file's hash."""
        if os.path.isabs(row.image_ref):
            row.error(field_name, f"image path {row.image_ref!r} must be relative to the images folder")
            return None
        target, there = self._resolve(base, row.image_ref)
        if not _inside(target, base):
            row.error(field_name, f"image path {row.image_ref!r} escapes the images folder")
            return None
        if not there and not self._present(target):
            target = self._in_subfolder(base, row.image_ref) or target
        return target

    def _resolve(self, base: str, ref: str) -> tuple[str, bool]:
        """base / ref with every link resolved, and whether it is known to be there; each folder
        is resolved once per run (a dataset has a few folders and many files), then only the
        file itself is checked for a link, which tells that it is there too."""
        folder, _, name = ref.replace(os.sep, "/").rpartition("/")
        parent = self.folders.get((base, folder))
        if parent is None:
            # Kept without a trailing separator (the root's is ""), so a plain join below is
            # what os.path.join gives, for a fraction of its cost.
            parent = self.folders[base, folder] = os.path.realpath(
                os.path.join(base, folder)).rstrip(os.sep)
        target = f"{parent}{os.sep}{name}"
        if name in ("", ".", ".."):
            return os.path.realpath(os.path.join(base, ref)), False
        try:
            mode = os.lstat(target).st_mode
        except (OSError, ValueError):  # not there, or a name the system refuses
            return target, False
        if stat.S_ISLNK(mode):
            return os.path.realpath(os.path.join(base, ref)), False
        return target, True

    def _first_look(self, target: str, ref: str, modality: str) -> _Loaded | _Unsettled | str:
        """A file no row named before, read once: a plain image is kept by its hash."""
        found = self._unpack(target) or self._load(target, ref, modality)
        if not isinstance(found, _Unsettled):
            self.images[target] = found
        return found

    def _present(self, target: str) -> bool:
        return os.path.exists(target) or any(z.holds(Path(target)) for z in self.zips)

    def _unpack(self, target: str) -> str:
        """Extract an archived image the first time a row names it ("" when done or not archived)."""
        for archive in self.zips:
            problem = archive.extract(Path(target))
            if problem is not None:
                return f"{os.path.basename(target)}: {problem}" if problem else ""
        return ""

    def _in_subfolder(self, base: str, ref: str) -> str | None:
        """Datasets keep images one folder down (SLAKE's imgs/, "VQA_RAD Image Folder/"):
        a path not found in the images folder is looked for in its image subfolders."""
        if base not in self.subfolders:
            self.subfolders[base] = sorted(
                p for p in Path(base).iterdir()
                if p.is_dir() and any(word in p.name.lower() for word in IMAGE_FOLDER_WORDS)
            )[:20]
        for folder in self.subfolders[base]:
            candidate = os.path.realpath(folder / ref)
            if _inside(candidate, base) and (os.path.isfile(candidate) or self._present(candidate)):
                return candidate
        return None

    def _load(self, target: str, ref: str, modality: str) -> _Loaded | _Unsettled | str:
        limit = self.max_image_bytes
        try:
            with open(target, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size > limit:
                    return f"image {ref} is {size} bytes, over the limit of {limit} bytes"
                data = fh.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return f"image file not found: {ref}"
        except OSError as exc:
            return f"{ref}: cannot be read ({exc.strerror or exc})"
        if not dicom.has_preamble(data):
            return _Unsettled(hashlib.sha256(data).hexdigest(), data, ref, modality)
        rendered = dicom.load(Path(target))
        if isinstance(rendered, tuple):
            return f"{ref}: {rendered[1]}"
        try:
            presets, described = presets_write(rendered.presets)
            checked = image_file_write(image_check(data=rendered.png))
        except ImageRejected as exc:
            return f"{ref}: {exc}"
        return _Loaded(
            checked=checked, presets=presets, modality=rendered.modality, meta=rendered.meta,
            dicom={**rendered.info, "modality": rendered.modality,
                   **({"presets": described} if described else {})},
        )

    def _flush(self, batch, *, approved_note: str) -> None:
        """Look this batch's images up and start checking the new ones; write the oldest
        batches, whose images the pool checked meanwhile."""
        lookup = self._look_up([image for _, image in batch if isinstance(image, _Pending)])
        self.batch_bytes = 0
        self.waiting.append((batch, lookup, approved_note))
        self._drain(keep=IN_FLIGHT)

    def _drain(self, *, keep: int = 0) -> None:
        while len(self.waiting) > keep:
            self.writes.submit(self._store, *self.waiting.popleft())

    def _store(self, batch, lookup: "_Lookup | None", approved_note: str) -> None:
        # One commit per batch, its new images with its rows: each commit waits for the disk.
        with transaction.atomic():
            if lookup is not None:
                self._settle(lookup)
            self._commit(batch, approved_note=approved_note)
        self._progress()

    def _look_up(self, pending: list[_Pending]) -> _Lookup | None:
        fresh: dict[str, tuple[bytes, str]] = {}
        keys = []
        for p in pending:
            value = self.assets[p.key]
            if not isinstance(value, _Unsettled) or value.data is None:
                continue  # settled, or in an earlier batch's lookup
            fresh.setdefault(value.sha256, (value.data, value.modality))
            value.data = None
            keys.append(p.key)
        if not keys:
            return None
        stored = images_stored(sha256s=fresh)
        new = [sha for sha in fresh if sha not in stored]
        return _Lookup(
            keys=keys, stored=stored, new=new,
            sizes={sha: (len(fresh[sha][0]), fresh[sha][1]) for sha in new},
            checking=self.checker.start([(fresh[sha][0], sha) for sha in new]) if new else None,
        )

    def _settle(self, lookup: _Lookup) -> None:
        """Store the new images the pool accepted, outside the rows' savepoint: a stored
        image stays stored even if the rows are written again after a conflict."""
        found: dict[str, int | str] = dict(lookup.stored)
        if lookup.checking is not None:
            verified = {}
            for sha, result in zip(lookup.new, lookup.checking.results(), strict=True):
                if isinstance(result, str):
                    found[sha] = result
                else:
                    verified[sha] = (result, *lookup.sizes[sha])
            found.update(images_add(verified=verified))
        for key in lookup.keys:
            value = self.assets[key]
            result = found[value.sha256]
            self.assets[key] = f"{value.ref}: {result}" if isinstance(result, str) and value.ref else result

    def _commit(self, batch, *, approved_note: str) -> None:
        good = []
        for row, image in batch:
            if isinstance(image, _Pending):
                found = self.assets[image.key]
                if isinstance(found, str):
                    row.error(image.field, found)
                image = found if isinstance(found, int) else None
            if not row.errors and needs_text(row):
                row.error("", MISSING_TEXT + " (an image alone is imported only from DICOM)")
            if row.errors:
                self.report.refuse(row.errors)
            else:
                good.append((row, image))
        if good:
            try:
                with transaction.atomic():
                    self._write(good, approved_note=approved_note)
            except IntegrityError:
                # A concurrent import of the same rows won the race; those rows are duplicates now.
                with transaction.atomic():
                    self._write(good, approved_note=approved_note)
        # Under DEBUG Django keeps every query's SQL; an import of millions must not. Left alone
        # while someone captures queries (a test counting them turns force_debug_cursor on).
        if settings.DEBUG and not connection.force_debug_cursor:
            connection.queries_log.clear()

    def _write(self, batch, *, approved_note: str) -> None:
        checked = [(row, c) for row, c in batch if isinstance(c, CheckedImage)]
        assets = images_store_many(
            checked=[c for _, c in checked] + [p for row, _ in checked for p in row.preset_images.values()],
            modality={
                **{p.sha256: row.record.get("modality", "")
                   for row, _ in checked for p in row.preset_images.values()},
                **{c.sha256: row.record.get("modality", "") for row, c in checked},
            },
            dicom={c.sha256: row.dicom for row, c in checked if row.dicom},
        ) if checked else {}
        # {key: (id, credential)} of the batch's records, those stored before first.
        records = records_by_key(
            project_id=self.project.pk,
            keys={(row.record["source"], row.record["external_id"]) for row, _ in batch},
        )
        fresh: list[dict] = []
        fresh_keys: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        # Every row with a candidate, new record or not: candidates_create skips existing ones,
        # so a second MedMax row (another task) on a known record still gets its candidate.
        with_candidates: list[tuple[ParsedRow, tuple[str, str]]] = []
        duplicates = 0
        for row, image in batch:
            key = (row.record["source"], row.record["external_id"])
            if row.candidates:
                with_candidates.append((row, key))
            if key in records or key in seen:
                duplicates += 1
                continue
            seen.add(key)
            fresh_keys.append(key)
            # The row's own record, completed in place: a batch written again sets the same.
            record = row.record
            record["project_id"] = self.project.pk
            record["image_id"] = assets[image.sha256].pk if isinstance(image, CheckedImage) else image
            record["import_run_id"] = self.import_run.pk if self.import_run else None
            fresh.append(record)
        ids = rows_insert(model=SourceRecord, rows=fresh)
        for key, pk, values in zip(fresh_keys, ids, fresh, strict=True):
            records[key] = (pk, values["credential"])
        specs = self._candidate_specs(with_candidates, records) if with_candidates else []
        made = (
            candidates_create(project=self.project, specs=specs, approved_note=approved_note,
                              new_records=ids)
            if specs else []
        )
        # Counted only once the batch is written: a retried batch must not count twice.
        self.report.duplicates += duplicates
        self.report.created += len(fresh)
        self.report.candidates_created += len(made)

    def _candidate_specs(self, rows, records) -> list[CandidateSpec]:
        specs = []
        for row, key in rows:
            record_id, credential = records[key]
            for candidate in row.candidates:
                fields = dict(candidate)
                provenance = {"import_file": row.file, row.unit: row.line,
                              **fields.pop("provenance", {})}
                specs.append(CandidateSpec(
                    record_id=record_id,
                    credential=credential == "yes",
                    template_ref="import",
                    provenance=provenance,
                    **fields,
                ))
        return specs

    def _progress(self, *, force: bool = False) -> None:
        """Progress by time, not by row or batch: the page polls once a second."""
        if not (self.track_progress and self.import_run):
            return
        now = time.monotonic()
        if not force and now - self.last_progress < PROGRESS_EVERY:
            return
        with self.progress_lock:
            self._progress_write(now)

    def _progress_write(self, now: float) -> None:
        self.last_progress = now
        changes = {"heartbeat_at": timezone.now(), "rows_done": self.report.rows,
                   "created": self.report.created, "duplicates": self.report.duplicates,
                   "problems": self.report.problems, "rejected": self.report.rejected}
        # The listed problems only grow, up to ERRORS_KEPT: written again only when they did.
        if len(self.report.errors) != self.errors_written:
            changes["errors"] = [e.as_dict() for e in self.report.errors]
            self.errors_written = len(self.report.errors)
        ImportRun.objects.filter(pk=self.import_run.pk).update(**changes)
