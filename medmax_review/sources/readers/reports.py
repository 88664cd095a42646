"""Radiology reports as MIMIC-CXR ships them: one `.txt` report per study, paired with the
study's images or DICOM files by study folder (`s50414267.txt` beside `s50414267/`) or by file
name (`case1.txt` beside `case1.dcm` or `case1.jpg`).

One record per report, holding the report text and the study's first image (MedMax keeps one
image per record; the others are counted in meta). Paired files are read by the importer, so
a DICOM file is rendered and described as any other DICOM.
"""

from collections.abc import Iterator
from pathlib import Path

from medmax_review.sources.readers.base import ParsedRow, file_stem, join_name

NAME = "reports"
IMAGE_SUFFIXES = (".dcm", ".dicom", ".jpg", ".jpeg", ".png")
NOT_REPORTS = {"readme", "license", "licence", "notice", "changelog", "manifest", "requirements"}
MAX_REPORT_BYTES = 1 << 20


def report_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*.txt")
        if p.is_file() and not p.is_symlink() and p.stem.lower() not in NOT_REPORTS
    )


def has_reports(folder: Path) -> bool:
    """A folder holds reports when some .txt file pairs with a study folder or an image:
    a lone notes.txt beside a set of scans is not a report."""
    return any(paired_images(p) for p in report_files(folder))


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink() and p.suffix.lower() in IMAGE_SUFFIXES
    )


def paired_images(report: Path) -> list[Path]:
    """The study folder's images, else the files named like the report."""
    study = report.with_suffix("")
    if study.is_dir():
        return _images_in(study)
    return [p for p in (report.with_suffix(s) for s in IMAGE_SUFFIXES) if p.is_file()]


def _row(report: Path, base: Path, name: str, source: str) -> ParsedRow:
    """`base` is the folder image paths are relative to; `name` how the report is named."""
    relative = report.relative_to(base)
    row = ParsedRow(file=name, line=0)
    if report.stat().st_size > MAX_REPORT_BYTES:
        row.error("report", f"report is over {MAX_REPORT_BYTES} bytes")
        return row
    try:
        text = report.read_text(encoding="utf-8-sig").strip()
    except UnicodeDecodeError as exc:
        row.error("report", f"report is not UTF-8 ({exc.reason})")
        return row
    if not text:
        row.error("report", "report file is empty")
        return row
    images = paired_images(report)
    if not images:
        row.error("image", f"no image or DICOM file pairs with this report (looked for the folder "
                           f"{relative.with_suffix('')}/ and {relative.stem}.dcm/.jpg/.png)")
        return row
    row.image_ref = str(images[0].relative_to(base))
    row.record = {
        "source": source,
        "external_id": str(relative.with_suffix("")),
        "credential": "no",
        "report": text,
        "meta": {"report_file": str(relative), "study_images": len(images),
                 **({"other_images": [p.name for p in images[1:]]} if len(images) > 1 else {})},
    }
    return row


def read(path: Path, display: str) -> Iterator[ParsedRow]:
    if path.is_dir():
        source = file_stem(display.rstrip(":")) or NAME
        for report in report_files(path):
            yield _row(report, path, join_name(display, report.relative_to(path)), source)
    else:
        yield _row(path, path.parent, display, NAME)


def count(path: Path) -> int:
    return len(report_files(path)) if path.is_dir() else 1
