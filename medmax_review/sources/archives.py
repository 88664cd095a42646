"""Unpacking uploaded ZIPs without letting an entry write outside its folder."""

import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from django.conf import settings

from medmax_review.sources.readers.base import RowError

ZIP_FIELD = "zip entry"
_DRIVE = re.compile(r"^[A-Za-z]:")


def _entry_problem(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic links are not accepted in a ZIP"
    posix = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or _DRIVE.match(name) or posix.is_absolute():
        return "entry has an absolute path; entries must stay inside the archive's folder"
    if ".." in posix.parts:
        return "entry path contains '..' and would land outside the archive's folder"
    if info.file_size > settings.MEDMAX_MAX_UPLOAD_BYTES:
        return f"entry is {info.file_size} bytes, over the upload limit"
    return ""


def zip_extract(*, path: Path, target: Path, display: str) -> list[RowError]:
    """Extract the safe entries of `path` into `target`; every refused entry becomes an error."""
    errors = []
    root = target.resolve()
    # A small archive may declare huge entries; stop before it fills the disk.
    budget = 2 * settings.MEDMAX_MAX_UPLOAD_BYTES
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        return [RowError(display, 0, "", f"not a readable ZIP file ({exc})")]
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            where = f"{display}:{info.filename}"
            problem = _entry_problem(info)
            destination = (root / info.filename.replace("\\", "/")).resolve()
            if not problem and not destination.is_relative_to(root):
                problem = "entry path would land outside the archive's folder"
            if not problem and info.file_size > budget:
                problem = "the archive expands to more than twice the upload limit; entry skipped"
            if problem:
                errors.append(RowError(where, 0, ZIP_FIELD, problem))
                continue
            budget -= info.file_size
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as src, open(destination, "wb") as dst:
                    shutil.copyfileobj(src, dst, length=1024 * 1024)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                destination.unlink(missing_ok=True)
                errors.append(RowError(where, 0, ZIP_FIELD, f"cannot be extracted ({exc})"))
    return errors
