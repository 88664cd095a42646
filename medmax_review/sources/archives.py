"""Unpacking uploaded ZIPs without letting an entry write outside its folder or fill the disk.

Every entry is checked first (paths, links, declared sizes). Data files, reports and DICOM
files are extracted at once; an image is extracted only when a row names it (or a report pairs
with it), so an archive of images its data never mentions costs nothing. Each extraction is
checked against the archive's budget and the disk's free space before it is written.
"""

import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from django.conf import settings

from medmax_review.sources.readers.base import RowError

ZIP_FIELD = "zip entry"
_DRIVE = re.compile(r"^[A-Za-z]:")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
DISK_RESERVE_BYTES = 256 * 1024 * 1024  # never extract into the last of the disk


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


class ZipSource:
    """An archive unpacked into `target` as its rows need it."""

    def __init__(self, *, path: Path, target: Path, display: str):
        self.display = display
        self.root = target.resolve()
        self.errors: list[RowError] = []
        self.entries: dict[Path, zipfile.ZipInfo] = {}  # safe, not yet extracted
        # A small archive may declare huge entries; stop before it fills the disk.
        self.budget = 2 * settings.MEDMAX_MAX_UPLOAD_BYTES
        try:
            self.archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            self.archive = None
            self.errors.append(RowError(display, 0, "", f"not a readable ZIP file ({exc})"))
            return
        for info in self.archive.infolist():
            if info.is_dir():
                continue
            problem = _entry_problem(info)
            destination = (self.root / info.filename.replace("\\", "/")).resolve()
            if not problem and not destination.is_relative_to(self.root):
                problem = "entry path would land outside the archive's folder"
            if problem:
                self.errors.append(RowError(f"{display}:{info.filename}", 0, ZIP_FIELD, problem))
                continue
            self.entries[destination] = info
            destination.parent.mkdir(parents=True, exist_ok=True)

    def extract_data(self) -> None:
        """Extract everything but images, and the images that reports pair with."""
        reports = {p.with_suffix("") for p in self.entries if p.suffix.lower() == ".txt"}
        for destination in list(self.entries):
            is_image = destination.suffix.lower() in IMAGE_SUFFIXES
            paired = destination.with_suffix("") in reports or any(
                parent in reports for parent in destination.parents)
            if not is_image or paired:
                problem = self.extract(destination)
                if problem:
                    info_name = destination.relative_to(self.root).as_posix()
                    self.errors.append(RowError(f"{self.display}:{info_name}", 0, ZIP_FIELD, problem))

    def holds(self, destination: Path) -> bool:
        return destination in self.entries

    def extract(self, destination: Path) -> str | None:
        """Write one entry: "" when written, why not when refused, None when not in the archive."""
        info = self.entries.pop(destination, None)
        if info is None or self.archive is None:
            return None
        free = shutil.disk_usage(self.root).free - DISK_RESERVE_BYTES
        if info.file_size > self.budget:
            return "the archive expands to more than twice the upload limit; entry skipped"
        if info.file_size > free:
            return "not enough free disk space to extract it; entry skipped"
        self.budget -= info.file_size
        try:
            with self.archive.open(info) as src, open(destination, "wb") as dst:
                # zipfile checks the declared size and CRC as it reads.
                shutil.copyfileobj(src, dst, length=1024 * 1024)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
            destination.unlink(missing_ok=True)
            return f"cannot be extracted ({exc})"
        return ""

    def close(self) -> None:
        if self.archive is not None:
            self.archive.close()
