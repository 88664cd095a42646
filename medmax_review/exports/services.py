"""Exports: numbered immutable DatasetVersions, built by streaming approved candidates to disk.

A version's folder holds the JSONL file(s) (data.jsonl, or train/validation/test.jsonl), the
images (images/<sha256>.<ext>, or images.tar, or none) and manifest.json, written last. Every
file is written under a hidden ".<name>.partial" name and renamed only when complete, so a crash
never leaves a file that looks whole. The data files hold nothing about when or by whom they
were made: the same approved set and options give byte-identical files.

Choices: credentialed rows keep `image_path` with an empty value (as published MedMax rows
for credentialed sources do) and their image is never copied; with images "none", rows still
name images/<sha256>.<ext>, the path the image would have, so it can be supplied from the
store later. Images are looked up only by the content hash stored with the record, never
through a path string that came with imported data.
"""

import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import reset_queries, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

import medmax_review
from medmax_review.core.medmax import TASKS, build_text, check_text
from medmax_review.exports import selectors, writers
from medmax_review.exports.models import DatasetVersion
from medmax_review.projects.models import Project

logger = logging.getLogger(__name__)

FORMATS = tuple(writers.FORMATS)
IMAGE_MODES = ("copy", "archive", "none")
SPLITS = ("train", "validation", "test")
SINGLE_FILE = "data"
MANIFEST = "manifest.json"
IMAGES_DIR = "images"
IMAGES_ARCHIVE = "images.tar"
EXCLUDED_LISTED = 1000  # rows listed one by one in the manifest; the rest only counted
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_EXT = re.compile(r"^[a-z0-9]{1,8}$")
_DIGITS = re.compile(r"\d+")


class ExportOptionsError(ValueError):
    """Bad export options; the message names the field."""


def _list(raw, name: str) -> list[str]:
    if raw in (None, ""):
        return []
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        raise ExportOptionsError(f"{name}: expected a list of names")
    return sorted({str(i).strip() for i in items if str(i).strip()})


def _split(raw) -> list[float] | None:
    if raw in (None, "", []):
        return None
    parts = raw.split(",") if isinstance(raw, str) else raw
    try:
        values = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise ExportOptionsError(f"split: {raw!r} is not three numbers like 0.9,0.05,0.05") from None
    if len(values) != 3 or any(v < 0 for v in values) or abs(sum(values) - 1) > 1e-6:
        raise ExportOptionsError(
            f"split: {raw!r} must be three non-negative proportions (train, validation, test)"
            " adding up to 1"
        )
    return values


def _day(raw, name: str) -> str | None:
    if raw in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(raw)).isoformat()
    except ValueError:
        raise ExportOptionsError(f"{name}: {raw!r} is not a date like 2026-01-31") from None


def export_options_clean(raw: dict) -> dict:
    """Validated, normalised options (sorted lists, fixed keys), as stored on the version."""
    unknown = set(raw) - {
        "status", "format", "images", "split", "provenance", "tasks", "sources", "licenses",
        "exclude_licenses", "min_agreeing", "since", "until",
    }
    if unknown:
        raise ExportOptionsError(f"unknown option(s): {', '.join(sorted(unknown))}")
    if raw.get("status", "approved") != "approved":
        raise ExportOptionsError("status: only approved candidates are exported")
    fmt = raw.get("format") or "medmax"
    if fmt not in FORMATS:
        raise ExportOptionsError(f"format: {fmt!r} is not one of {', '.join(FORMATS)}")
    images = raw.get("images") or "copy"
    if images not in IMAGE_MODES:
        raise ExportOptionsError(f"images: {images!r} is not one of {', '.join(IMAGE_MODES)}")
    tasks = _list(raw.get("tasks"), "tasks")
    bad = [t for t in tasks if t not in TASKS]
    if bad:
        raise ExportOptionsError(f"tasks: unknown task(s) {', '.join(bad)}")
    try:
        min_agreeing = int(raw.get("min_agreeing") or 0)
    except (TypeError, ValueError):
        raise ExportOptionsError("min_agreeing: must be a whole number") from None
    if min_agreeing < 0:
        raise ExportOptionsError("min_agreeing: must be 0 or more")
    options = {
        "status": "approved",
        "format": fmt,
        "images": images,
        "split": _split(raw.get("split")),
        "provenance": bool(raw.get("provenance")),
        "tasks": tasks,
        "sources": _list(raw.get("sources"), "sources"),
        "licenses": _list(raw.get("licenses"), "licenses"),
        "exclude_licenses": _list(raw.get("exclude_licenses"), "exclude_licenses"),
        "min_agreeing": min_agreeing,
        "since": _day(raw.get("since"), "since"),
        "until": _day(raw.get("until"), "until"),
    }
    if options["since"] and options["until"] and options["since"] > options["until"]:
        raise ExportOptionsError("until: must not be before since")
    return options


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
        return DatasetVersion.objects.create(
            project=project, number=number, format=clean["format"], options=clean,
            path=path, created_by=user,
        )


def dataset_version_enqueue(*, version: DatasetVersion) -> None:
    """Build the version in a worker once the transaction that created it commits."""
    from medmax_review.exports.tasks import build_dataset_version

    build_dataset_version.delay_on_commit(version.pk)


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


BUSY = "busy"  # another worker is building the version right now


def dataset_version_claim(*, version_id: int) -> tuple[int, bool] | None:
    """Take the build for this worker: (attempt number, taken over), or None if not claimable.

    A pending version, or a running one whose heartbeat went stale (its worker died), can be
    claimed; each is one conditional UPDATE, so exactly one worker wins even when several
    receive the task at once.
    """
    now = timezone.now()
    changes = {"status": DatasetVersion.RUNNING, "heartbeat_at": now, "rows_done": 0,
               "attempts": F("attempts") + 1}
    stale = now - timedelta(seconds=settings.EXPORT_STALE_SECONDS)
    mine = DatasetVersion.objects.filter(pk=version_id)
    for claimable, taken_over in (
        (Q(status=DatasetVersion.PENDING), False),
        (Q(status=DatasetVersion.RUNNING, heartbeat_at__lt=stale), True),
    ):
        if mine.filter(claimable).update(**changes):
            return mine.values_list("attempts", flat=True).get(), taken_over
    return None


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
    ".partial" file or folder and every file a build writes. Returns the names removed."""
    removed = []
    names = [f"{n}.jsonl" for n in (*SPLITS, SINGLE_FILE)] + [MANIFEST, IMAGES_ARCHIVE, IMAGES_DIR]
    for name in names:
        for path in (folder / name, writers.partial_name(folder / name)):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            else:
                continue
            removed.append(path.name)
    for path in folder.glob(f".*{writers.PARTIAL_SUFFIX}"):
        # Any other partial (a build of another app version may name files differently).
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        removed.append(path.name)
    return sorted(removed)


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


class _Superseded(writers.Abandoned):
    """This build lost the version to another worker (it was silent past the stale limit)."""


def _fail(version: DatasetVersion, attempt: int, error: str) -> DatasetVersion:
    DatasetVersion.objects.filter(pk=version.pk, attempts=attempt).update(
        status=DatasetVersion.FAILED, error=error, finished_at=timezone.now()
    )
    version.refresh_from_db()
    return version


@dataclass
class _Stats:
    """Counters only: their size depends on the number of tasks, sources, licences, not rows."""

    rows: int = 0
    by: dict[str, Counter] = field(
        default_factory=lambda: {k: Counter() for k in ("task", "source", "license", "split",
                                                          "credential")}
    )
    excluded: int = 0
    excluded_reasons: Counter = field(default_factory=Counter)
    excluded_rows: list = field(default_factory=list)
    templates: set = field(default_factory=set)
    models: set = field(default_factory=set)
    reviews: int = 0
    reviewed: int = 0
    multi_reviewed: int = 0
    unanimous: int = 0
    images: set = field(default_factory=set)  # reset per batch: a cache, not a record

    def count(self, row: selectors.ExportRow, split: str) -> None:
        self.rows += 1
        for key, value in (("task", row.task), ("source", row.source),
                           ("license", row.license or "(none)"), ("split", split),
                           ("credential", row.credential)):
            self.by[key][value] += 1
        self.templates.add(f"{row.template_ref} (v{row.template_version})")
        if row.model:
            self.models.add(row.model)
        review = row.review
        self.reviews += review.human_verdicts
        self.reviewed += review.human_verdicts > 0
        if review.human_verdicts > 1:
            self.multi_reviewed += 1
            self.unanimous += review.unanimous

    def exclude(self, row: selectors.ExportRow, reasons: list[str]) -> None:
        self.excluded += 1
        for reason in reasons:
            self.excluded_reasons[_DIGITS.sub("N", reason)] += 1
        if len(self.excluded_rows) < EXCLUDED_LISTED:
            self.excluded_rows.append(
                {"candidate_id": row.candidate_id, "record_id": row.record_id, "reasons": reasons}
            )


class _Build:
    def __init__(self, *, version: DatasetVersion, folder: Path, attempt: int):
        self.version = version
        self.attempt = attempt
        # Beats between batches too (large images, the archive), well inside the stale limit.
        self.beat_every = max(0.5, min(10.0, settings.EXPORT_STALE_SECONDS / 3))
        self.last_beat = time.monotonic()
        self.folder = folder
        self.options = version.options
        self.line = writers.FORMATS[version.format]
        self.stats = _Stats()
        mode = self.options["images"]
        self.image_dir = {
            "copy": folder / IMAGES_DIR,
            "archive": writers.partial_name(folder / IMAGES_DIR),  # staging, tarred at the end
            "none": None,
        }[mode]
        self.names = list(SPLITS) if self.options["split"] else [SINGLE_FILE]
        self.media_root = Path(settings.MEDIA_ROOT).resolve()
        self.image_count = 0

    def beat(self, *, force: bool = False, **changes) -> None:
        """Save the heartbeat (and `changes`) while this build still owns the version."""
        if not force and not changes and time.monotonic() - self.last_beat < self.beat_every:
            return
        owned = DatasetVersion.objects.filter(
            pk=self.version.pk, status=DatasetVersion.RUNNING, attempts=self.attempt
        ).update(heartbeat_at=timezone.now(), **changes)
        if not owned:
            raise _Superseded()
        self.last_beat = time.monotonic()

    def run(self) -> dict:
        project, options = self.version.project, self.options
        total = selectors.export_count(project=project, options=options)
        self.beat(rows_total=total)
        if self.image_dir:
            self.image_dir.mkdir()
        files = {name: writers.AtomicLineFile(self.folder / f"{name}.jsonl") for name in self.names}
        digests: dict[str, writers.FileDigest] = {}
        read = 0
        try:
            for batch in selectors.export_batches(
                project=project, options=options, batch_size=settings.EXPORT_BATCH_SIZE
            ):
                self.stats.images = set()
                for row in batch:
                    self.beat()
                    line, problems = self._prepare(row)
                    if problems:
                        self.stats.exclude(row, problems)
                        continue
                    split = split_of(_split_key(row), options["split"]) if options["split"] else SINGLE_FILE
                    files[split].write(self.line(line))
                    self.stats.count(row, split)
                read += len(batch)
                self.beat(rows_done=read)
                # With DEBUG on, Django keeps every query's SQL; batches of ids would add up.
                reset_queries()
            self.beat(force=True)  # still ours: publish
            for name, handle in files.items():
                digests[f"{name}.jsonl"] = handle.commit()
        except _Superseded:
            # The temporary names now belong to the build that took over: close, leave them.
            for handle in files.values():
                handle.close()
            raise
        except BaseException:
            for handle in files.values():
                handle.abort()
            raise
        digests.update(self._images())
        writers.fsync_dir(self.folder)
        manifest = self._manifest(digests, read)
        self.beat(force=True)
        handle = writers.AtomicLineFile(self.folder / MANIFEST)
        handle.write(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        handle.commit()
        writers.fsync_dir(self.folder)
        return manifest

    def _prepare(self, row: selectors.ExportRow) -> tuple[writers.ExportLine, list[str]]:
        """The row to write and every reason it may not be published (empty: it may)."""
        credentialed = row.credential == "yes"
        # A credentialed row stands for an image held at its source even when we hold none.
        has_image = bool(row.image_sha256) or credentialed
        text = build_text(
            instruction=row.instruction, context=row.context, response=row.response,
            image_position=row.image_position,
        )
        problems = check_text(text, has_image=has_image)
        min_agreeing = self.options["min_agreeing"]
        if row.review.agreeing < min_agreeing:
            problems.append(
                f"{row.review.agreeing} agreeing reviews, fewer than the {min_agreeing} required"
            )
        image_path = ""
        if row.image_sha256 and not credentialed and not problems:
            image_path, problem = self._image(row)
            if problem:
                problems.append(problem)
        provenance = None
        if self.options["provenance"]:
            provenance = {
                "candidate_id": row.candidate_id,
                "model": row.model,
                "template": row.template_ref,
                "template_version": row.template_version,
                "reviewers": row.review.reviewers,
                "decision": row.review.final,
                "edited": row.edited,
                "scores": _score_values(row.scores),
            }
        line = writers.ExportLine(
            text=text, image_path=image_path, task=row.task, source=row.source,
            credential="yes" if credentialed else "no", provenance=provenance,
        )
        return line, problems

    def _image(self, row: selectors.ExportRow) -> tuple[str, str]:
        """The image's export path, named only by its stored content hash, and any problem.

        Never a path from imported data: the file is found through the store's own record
        (MEDIA_ROOT / ImageAsset.file), checked to stay inside MEDIA_ROOT, and its bytes are
        checked against the hash before they are published.
        """
        sha, ext = row.image_sha256, row.image_format.lower()
        if not _SHA256.match(sha) or not _EXT.match(ext):
            return "", "image has no valid content hash or format in the store"
        name = f"{sha}.{ext}"
        relative = f"{IMAGES_DIR}/{name}"
        if name in self.stats.images:
            return relative, ""
        source = (self.media_root / row.image_file).resolve()
        if not source.is_relative_to(self.media_root):
            return "", "image file lies outside the image store"
        if self.image_dir is None:
            problem = "" if source.is_file() else "image file missing from the image store"
        else:
            problem = writers.place_image(source=source, target=self.image_dir / name, sha256=sha)
        if not problem:
            self.stats.images.add(name)
        return relative, problem

    def _images(self) -> dict[str, writers.FileDigest]:
        """Digests of the published image files (or of the archive that holds them)."""
        mode = self.options["images"]
        if mode == "none":
            return {}
        names = sorted(os.listdir(self.image_dir))
        self.image_count = len(names)
        if mode == "archive":
            members = [(f"{IMAGES_DIR}/{n}", self.image_dir / n) for n in names]
            digest = writers.tar_write(
                members=members, target=self.folder / IMAGES_ARCHIVE, progress=self.beat
            )
            shutil.rmtree(self.image_dir)
            return {IMAGES_ARCHIVE: digest}
        # The name is the content hash, checked when the file was placed.
        return {
            f"{IMAGES_DIR}/{n}": writers.FileDigest(n.split(".")[0], (self.image_dir / n).stat().st_size)
            for n in names
        }

    def _manifest(self, digests: dict[str, writers.FileDigest], read: int) -> dict:
        version, stats, options = self.version, self.stats, self.options
        return {
            "project": version.project.slug,
            "version": version.number,
            "created_at": version.created_at.isoformat(),
            "app_version": medmax_review.__version__,
            "format": version.format,
            "filters": options,
            "rows_read": read,
            "rows": stats.rows,
            "counts": {key: dict(sorted(counter.items())) for key, counter in stats.by.items()},
            "agreement": {
                "reviews": stats.reviews,
                "candidates_reviewed": stats.reviewed,
                "candidates_with_several_reviews": stats.multi_reviewed,
                "unanimous": stats.unanimous,
                "unanimous_share": (
                    round(stats.unanimous / stats.multi_reviewed, 4) if stats.multi_reviewed
                    else None
                ),
            },
            "templates": sorted(stats.templates),
            "models": sorted(stats.models),
            "images": {"mode": options["images"], "count": self.image_count},
            "excluded": {
                "rows": stats.excluded,
                "reasons": dict(sorted(stats.excluded_reasons.items())),
                "listed": stats.excluded_rows,
                "listed_limit": EXCLUDED_LISTED,
            },
            "files": {
                name: {"sha256": d.sha256, "size": d.size} for name, d in sorted(digests.items())
            },
        }


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
