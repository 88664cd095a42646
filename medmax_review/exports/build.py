"""The build engine: one worker claims a version, streams its approved rows through the format's
writer, and publishes the files and the manifest.

A version's folder holds the data files (one per split that has rows), the images
(images/<sha256>.<ext>, or images.tar, or inside the data files for Parquet, or none), README.md
(a dataset card naming the data files), ATTRIBUTION.md, any file the format's trainer needs, and
manifest.json, written last. Every file is written under a hidden ".<name>.partial" name and
renamed only when complete, so a crash never leaves a file that looks whole. The files hold
nothing about when or by whom they were made: the same approved set and options give
byte-identical files.

Images are looked up only by the content hash stored with the record, never through a path
string that came with imported data. Credentialed rows never carry their image; with images
"none", rows still name images/<sha256>.<ext>, the path the image would have, so it can be
supplied from the store later.
"""

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.db import reset_queries
from django.db.models import F
from django.utils import timezone

from medmax_review.core.gc_frozen import gc_frozen
from medmax_review.core.leases import TAKEN_OVER, lease_claim
from medmax_review.core.medmax import build_text, check_text
from medmax_review.core.read_ahead import read_ahead
from medmax_review.exports import cards, changelog, files, selectors, writers
from medmax_review.exports.manifest import BuildStats
from medmax_review.exports.models import DatasetVersion
from medmax_review.sources import image_files

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
SINGLE_FILE = writers.SINGLE
MANIFEST = "manifest.json"
IMAGES_DIR = "images"
IMAGES_ARCHIVE = "images.tar"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_EXT = re.compile(r"^[a-z0-9]{1,8}$")
CHECKED_IMAGES = 100_000  # image names remembered as checked, at most


def dataset_version_folder(version: DatasetVersion) -> Path:
    path = Path(version.path)
    return path if path.is_absolute() else Path(settings.MEDIA_ROOT) / path


def split_of(key: str, proportions: list[float]) -> str:
    """train / validation / test from a hash of `key`: the same key always lands in one split."""
    digest = hashlib.sha256(f"split:{key}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    total = 0.0
    for name, share in zip(SPLITS, proportions, strict=True):
        total += share
        if point < total:
            return name
    return [n for n, s in zip(SPLITS, proportions, strict=True) if s > 0][-1]


def dataset_version_claim(*, version_id: int) -> tuple[int, bool] | None:
    """Take the build for this worker: (attempt number, taken over), or None if not claimable.

    A pending version, or a running one whose heartbeat went stale (its worker died), can be
    claimed; each is one conditional UPDATE, so exactly one worker wins even when several
    receive the task at once.
    """
    outcome = lease_claim(
        model=DatasetVersion, pk=version_id, pending=DatasetVersion.PENDING,
        running=DatasetVersion.RUNNING, stale_seconds=settings.EXPORT_STALE_SECONDS,
        rows_done=0, attempts=F("attempts") + 1,
    )
    if outcome is None:
        return None
    attempts = DatasetVersion.objects.filter(pk=version_id).values_list("attempts", flat=True).get()
    return attempts, outcome == TAKEN_OVER


def dataset_version_build(*, version_id: int) -> DatasetVersion:
    """Write the version's files, once: a version done, failed or held by a live worker is
    returned as it is. A version whose worker died is rebuilt from scratch; the output is
    deterministic, so the result is byte-identical to an uninterrupted build."""
    claim = dataset_version_claim(version_id=version_id)
    version = DatasetVersion.objects.select_related("project").get(pk=version_id)
    if claim is None:
        return version
    attempt, taken_over = claim
    folder = dataset_version_folder(version)
    if taken_over:
        # The folder is this version's own, made by the build that died, unless that build
        # died before making it and another export sits there: that one is left alone.
        other = _other_export_in(folder, version)
        if other:
            return _fail(version, attempt, f"the folder {folder} holds {other}; nothing was written")
        folder.mkdir(parents=True, exist_ok=True)
        version_leftovers_remove(folder=folder)
    else:
        try:
            folder.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            return _fail(version, attempt, f"the folder {folder} already exists; nothing was written")
    try:
        manifest = _Build(version=version, folder=folder, attempt=attempt).run()
    except _Superseded:
        # Another worker took the version over while this one stalled: its files now.
        logger.warning("export v%s of %s: taken over by another worker", version.number,
                       version.project.slug)
        version.refresh_from_db()
        return version
    except Exception as exc:
        logger.exception("export v%s of %s failed", version.number, version.project.slug)
        # Only ever this version's own folder: created above.
        shutil.rmtree(folder, ignore_errors=True)
        return _fail(version, attempt, f"{type(exc).__name__}: {exc}")
    DatasetVersion.objects.filter(pk=version.pk, attempts=attempt).update(
        status=DatasetVersion.DONE, manifest=manifest, finished_at=timezone.now(),
        rows_done=manifest["rows_read"], heartbeat_at=timezone.now(),
    )
    version.refresh_from_db()
    return version


def _other_export_in(folder: Path, version: DatasetVersion) -> str:
    """What the folder holds if it is not this version's: "" when it is, or has no manifest."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return ""
    except (OSError, ValueError):
        return "an unreadable manifest.json"
    mine = (version.project.slug, version.number, version.created_at.isoformat())
    found = (manifest.get("project"), manifest.get("version"), manifest.get("created_at"))
    return "" if found == mine else f"export v{found[1]} of {found[0]}"


def version_leftovers_remove(*, folder: Path) -> list[str]:
    """Remove what an interrupted build of this version may have left: every hidden
    ".partial" file or folder and every file a build of any format writes. Returns the names
    removed."""
    removed = []
    names = writers.top_names([*SPLITS, SINGLE_FILE]) | {
        MANIFEST, IMAGES_ARCHIVE, IMAGES_DIR, cards.README, cards.ATTRIBUTION,
        changelog.ROWS_FILE, changelog.CHANGELOG,
    }
    for name in sorted(names):
        for path in (folder / name, files.partial_name(folder / name)):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            else:
                continue
            removed.append(path.name)
    for path in folder.glob(f".*{files.PARTIAL_SUFFIX}"):
        # Any other partial (a build of another app version may name files differently).
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        removed.append(path.name)
    return sorted(removed)


class _Superseded(files.Abandoned):
    """This build lost the version to another worker (it was silent past the stale limit)."""


def _fail(version: DatasetVersion, attempt: int, error: str) -> DatasetVersion:
    DatasetVersion.objects.filter(pk=version.pk, attempts=attempt).update(
        status=DatasetVersion.FAILED, error=error, finished_at=timezone.now()
    )
    version.refresh_from_db()
    return version


class _Build:
    def __init__(self, *, version: DatasetVersion, folder: Path, attempt: int):
        self.version = version
        self.attempt = attempt
        # Beats between batches too (large images, the archive), well inside the stale limit.
        self.beat_every = max(0.5, min(10.0, settings.EXPORT_STALE_SECONDS / 3))
        self.last_beat = time.monotonic()
        self.folder = folder
        self.options = version.options
        # Versions made before task_names existed wrote canonical names.
        self.source_names = self.options.get("task_names") == "source"
        self.writer = writers.FORMATS[version.format](folder)
        self.min_agreeing = self.options["min_agreeing"]
        self.provenance = bool(self.options["provenance"])
        self.stats = BuildStats()
        # Image names checked -> the file to embed (None when not embedding), so each image is
        # found, verified and placed once; a cache, not a record: emptied when full.
        self.checked: dict[str, Path | None] = {}
        # Split per image (or record): MedMax has two rows per image and more across tasks.
        self.splits: dict[str, str] = {}
        mode = self.options["images"]
        self.image_dir = None  # "none", and formats that embed the bytes: nothing copied
        if mode == "copy" and not self.writer.embeds_images:
            self.image_dir = folder / IMAGES_DIR
        elif mode == "archive":
            self.image_dir = files.partial_name(folder / IMAGES_DIR)  # staging, tarred at the end
        self.embed = mode != "none" and self.writer.embeds_images
        self.names = list(SPLITS) if self.options["split"] else [SINGLE_FILE]
        self.media_root = Path(settings.MEDIA_ROOT).resolve()
        self.scratch: Path | None = None  # images fetched from object storage to be embedded
        self.image_count = 0
        self.read = 0  # rows of the batches done
        # The current batch's images first met by the read-ahead thread: name -> (file, problem).
        self.verified: dict[str, tuple[Path, str]] = {}

    def beat(self, *, force: bool = False, **changes) -> None:
        """Save the heartbeat and the rows read so far (and `changes`) while this build still
        owns the version: by time, not per batch, so small batches cost no extra commits."""
        if not force and not changes and time.monotonic() - self.last_beat < self.beat_every:
            return
        owned = DatasetVersion.objects.filter(
            pk=self.version.pk, status=DatasetVersion.RUNNING, attempts=self.attempt
        ).update(heartbeat_at=timezone.now(), rows_done=self.read, **changes)
        if not owned:
            raise _Superseded()
        self.last_beat = time.monotonic()

    def run(self) -> dict:
        try:
            with gc_frozen():  # a row's objects are short-lived, the program's are not
                return self._run()
        finally:
            if self.scratch is not None:
                shutil.rmtree(self.scratch, ignore_errors=True)

    def _run(self) -> dict:
        project, options = self.version.project, self.options
        total = selectors.export_count(project=project, options=options)
        self.beat(rows_total=total)
        if self.image_dir:
            self.image_dir.mkdir()
        # Diffed against the previous version as the rows are written.
        self.index = changelog.RowIndex(self.folder, diff=self._diff())
        try:
            # The next batches are fetched while this thread writes the current one.
            for batch, verified in read_ahead(self._batches):
                self.verified = verified
                if len(self.checked) > CHECKED_IMAGES:
                    self.checked = {}
                if len(self.splits) > CHECKED_IMAGES:
                    self.splits = {}
                for row in batch:
                    self.beat()
                    line, problems = self._prepare(row)
                    if problems:
                        self.stats.exclude(row, problems)
                        self._index(row, line, split="", left_out=problems)
                        continue
                    split = self._split(row)
                    self.writer.write(split, line)
                    self._index(row, line, split=split)
                    self.stats.count(row, split)
                    self.stats.embedded += line.image_file is not None
                self.read += len(batch)
                # With DEBUG on, Django keeps every query's SQL; batches of ids would add up.
                reset_queries()
            self.beat(force=True)  # still ours: publish
            # Every file but the manifest is synced to disk at once, not one after another.
            with files.synced_together():
                digests = self.writer.commit()
                digests[changelog.ROWS_FILE] = self.index.commit()
                changes = self.index.diff.finish().as_manifest()
                digests.update(self._images())
                empty = [writers.hf_split(n) for n in self.names if n not in self.writer.published]
                for name, text in self._notices(empty, changes).items():
                    digests[name] = _write_whole(self.folder / name, text)
        except _Superseded:
            # The temporary names now belong to the build that took over: close, leave them.
            self.writer.close()
            self.index.file.close()
            raise
        except BaseException:
            self.writer.abort()
            self.index.abort()
            raise
        files.fsync_dir(self.folder)
        manifest = self.stats.manifest(
            version=self.version, digests=digests, read=self.read, empty_splits=empty,
            image_count=self.image_count,
        )
        manifest["changelog"] = changes
        self.beat(force=True)
        _write_whole(self.folder / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        files.fsync_dir(self.folder)
        return manifest

    def _batches(self) -> Iterator[tuple[list[selectors.ExportRow], dict[str, tuple[Path, str]]]]:
        """The rows a batch at a time, each batch with the stored images it is the first to
        name verified (read and hashed): run by the read-ahead thread, so the files are read
        while the caller writes the batch before."""
        local = image_files.object_store() is None
        seen: set[str] = set()
        for batch in selectors.export_batches(project=self.version.project, options=self.options,
                                              batch_size=settings.EXPORT_BATCH_SIZE):
            verified = {}
            # Per row only a set lookup: this thread holds the GIL while it runs Python.
            for row in batch if local else ():
                sha = row.image_sha256
                if not sha or sha in seen or row.credential == "yes":
                    continue
                seen.add(sha)  # a hash names one file, whatever its format
                name = _image_name(row)
                if name is not None:
                    verified[name] = self._verify(image_files.local_path(row.image_file), sha)
            if len(seen) > CHECKED_IMAGES:
                seen = set()
            yield batch, verified

    def _split(self, row: selectors.ExportRow) -> str:
        proportions = self.options["split"]
        if not proportions:
            return SINGLE_FILE
        key = _split_key(row)
        split = self.splits.get(key)
        if split is None:
            split = self.splits[key] = split_of(key, proportions)
        return split

    def _index(self, row: selectors.ExportRow, line: writers.ExportLine, *, split: str,
               left_out: list[str] | None = None) -> None:
        self.index.add(
            candidate_id=row.candidate_id, record_id=row.record_id, task=row.task,
            source=row.source, split=split, left_out=left_out,
            digest=changelog.row_hash(text=line.text, image=row.image_sha256, task=line.task,
                                      source=line.source, credential=line.credential),
        )

    def _diff(self) -> changelog.IndexDiff:
        """The changelog against the project's previous finished version (none: all added)."""
        previous = selectors.version_previous(version=self.version)
        old = dataset_version_folder(previous) / changelog.ROWS_FILE if previous else None
        if old is not None and not old.is_file():
            old = None  # made before versions kept a row index: compared with nothing
        return changelog.IndexDiff(
            old=old, previous=previous.number if old is not None else None,
            current=self.version.number,
        )

    def _notices(self, empty: list[str], changes: dict) -> dict[str, str]:
        """README.md (the dataset card), ATTRIBUTION.md, CHANGELOG.md and the format's own
        files."""
        uses = self.stats.source_uses()
        card = cards.dataset_card(
            format_name=self.writer.name, format_label=self.writer.label,
            files=self.writer.published, rows=dict(self.stats.by["split"]), sources=uses,
            empty_splits=empty,
        )
        return {
            cards.README: card, cards.ATTRIBUTION: cards.attribution_notice(uses),
            changelog.CHANGELOG: changelog.changelog_markdown(
                project=self.version.project.slug, summary=changes, current=self.version.number),
            **self.writer.extra_files(),
        }

    def _prepare(self, row: selectors.ExportRow) -> tuple[writers.ExportLine, list[str]]:
        """The row to write and every reason it may not be published (empty: it may)."""
        credentialed = row.credential == "yes"
        text = build_text(
            instruction=row.instruction, context=row.context, response=row.response,
            image_position=row.image_position,
        )
        # A credentialed row stands for an image held at its source even when we hold none.
        problems = check_text(text, has_image=credentialed or bool(row.image_sha256))
        agreeing = row.review.agreeing
        if agreeing < self.min_agreeing:
            problems.append(
                f"{agreeing} agreeing reviews, fewer than the {self.min_agreeing} required"
            )
        source_names = self.source_names
        line = writers.ExportLine(
            str(row.candidate_id), text, None,
            (row.task_name or row.task) if source_names else row.task,
            row.source, "yes" if credentialed else "no",
            self._provenance(row) if self.provenance else None, None,
            self._image_path_absent(row) if source_names else None,
        )
        if not problems:
            left_out = self.writer.left_out(line)
            problems += [left_out] if left_out else []
        if row.image_sha256 and not credentialed and not problems:
            line.image_path, line.image_file, problem = self._image(row)
            if problem:
                problems.append(problem)
        return line, problems

    def _image_path_absent(self, row: selectors.ExportRow) -> str | None:
        """MedMax's image_path for a row without an image: null, unless the row is written back
        as its source had it (task_names "source"): then the value the import kept, or for a
        credentialed row the "" MedMax publishes such rows with."""
        if not self.source_names:
            return None
        if row.image_path_kept:
            return "" if row.image_path_imported == "" else None
        return "" if row.credential == "yes" else None

    def _provenance(self, row: selectors.ExportRow) -> dict:
        return {
            "candidate_id": row.candidate_id,
            "model": row.model,
            "template": row.template_ref,
            "template_version": row.template_version,
            "reviewers": row.review.reviewers,
            "decision": row.review.final,
            "edited": row.edited,
            "scores": _score_values(row.scores),
        }

    def _image(self, row: selectors.ExportRow) -> tuple[str | None, Path | None, str]:
        """The image's export path, named only by its stored content hash, the checked store
        file when the format embeds the bytes, and any problem.

        Never a path from imported data: the file is found through the store's own record
        (MEDIA_ROOT / ImageAsset.file), checked to stay inside MEDIA_ROOT, and its bytes are
        checked against the hash before they are published.
        """
        sha, ext = row.image_sha256, row.image_format.lower()
        name = f"{sha}.{ext}"
        relative = f"{IMAGES_DIR}/{name}"
        if name in self.checked:  # its hash and format were checked with it
            return relative, self.checked[name], ""
        if _image_name(row) is None:
            return None, None, "image has no valid content hash or format in the store"
        stored = image_files.local_path(row.image_file)
        if stored is None:
            return self._image_fetched(row, name, relative)
        target = self.image_dir / name if self.image_dir is not None else None
        source = None
        if target is None or not target.exists():  # there: placed earlier by this build
            source, problem = self.verified.get(name) or self._verify(stored, sha)
            if problem:
                return None, None, problem
            if target is not None:
                files.image_put(source=source, target=target)
        self.checked[name] = source if self.embed else None
        return relative, self.checked[name], ""

    def _verify(self, stored: Path, sha: str) -> tuple[Path, str]:
        """The store's file, resolved, and why it may not be published ("" when it may). Its
        bytes are hashed whenever they are shipped; with images "none" it need only be there."""
        source = stored.resolve()
        if not source.is_relative_to(self.media_root):
            return source, "image file lies outside the image store"
        return source, files.image_verify(source=source, sha256=sha,
                                          hashed=self.image_dir is not None or self.embed)

    def _image_fetched(self, row: selectors.ExportRow, name: str,
                       relative: str) -> tuple[str | None, Path | None, str]:
        """`_image` for object storage: the bytes are fetched into the version's images folder,
        or into a scratch folder when the format embeds them."""
        sha = row.image_sha256
        folder = self.image_dir
        if folder is None and self.embed:
            folder = self.scratch = self.scratch or Path(
                tempfile.mkdtemp(prefix=".fetched-", dir=self.folder.parent))
        if folder is None:
            problem = "" if image_files.exists(row.image_file) else files.IMAGE_MISSING
        else:
            problem = files.fetch_image(read=lambda: image_files.read(row.image_file),
                                        target=folder / name, sha256=sha)
        if problem:
            return None, None, problem
        self.checked[name] = folder / name if self.embed else None
        return relative, self.checked[name], ""

    def _images(self) -> dict[str, files.FileDigest]:
        """Digests of the published image files (or of the archive that holds them)."""
        mode = self.options["images"]
        if self.image_dir is None:
            return {}
        names = sorted(os.listdir(self.image_dir))
        self.image_count = len(names)
        if mode == "archive":
            members = [(f"{IMAGES_DIR}/{n}", self.image_dir / n) for n in names]
            digest = files.tar_write(
                members=members, target=self.folder / IMAGES_ARCHIVE, progress=self.beat
            )
            shutil.rmtree(self.image_dir)
            return {IMAGES_ARCHIVE: digest}
        # The name is the content hash, checked when the file was placed.
        return {
            f"{IMAGES_DIR}/{n}": files.FileDigest(n.split(".")[0], (self.image_dir / n).stat().st_size)
            for n in names
        }

def _write_whole(path: Path, text: str) -> files.FileDigest:
    handle = files.AtomicFile(path)
    handle.write(text)
    return handle.commit()


def _image_name(row: selectors.ExportRow) -> str | None:
    """images/<name> of the row's stored image, or None when its hash or format is not valid."""
    sha, ext = row.image_sha256, row.image_format.lower()
    return f"{sha}.{ext}" if _SHA256.match(sha) and _EXT.match(ext) else None


def _split_key(row: selectors.ExportRow) -> str:
    # By image, so one image never lands in two splits.
    return row.image_sha256 or f"record:{row.record_id}"


def _score_values(scores: dict | None) -> dict:
    if not isinstance(scores, dict):
        return {}
    out = {}
    for name in sorted(scores):
        value = scores[name]
        out[name] = value.get("value") if isinstance(value, dict) else value
    return out
