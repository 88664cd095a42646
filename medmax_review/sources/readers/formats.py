"""Which reader reads a file: a container (JSON lines, JSON, CSV, Parquet) read one object at a
time, and a shape that turns each object into a record (plain records, MedMax rows, LLaVA
conversations). `--format auto` decides both from the content, not the file name; a named
format fixes one of them and the other is still detected.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from types import ModuleType

from medmax_review.sources.readers import (
    csvfile,
    dicom,
    jsonarray,
    jsonl,
    llava,
    mapping,
    medmax,
    parquet,
    records,
)
from medmax_review.sources.readers.base import KNOWN_KEYS, ParsedRow, file_stem

AUTO, JSONL, JSON, CSV, PARQUET = "auto", "jsonl", "json", "csv", "parquet"
MEDMAX, LLAVA, DICOM, REPORTS = "medmax", "llava", "dicom", "reports"
FORMATS = (AUTO, JSONL, JSON, CSV, PARQUET, MEDMAX, LLAVA, DICOM, REPORTS)
CONTAINERS: dict[str, ModuleType] = {JSONL: jsonl, JSON: jsonarray, CSV: csvfile, PARQUET: parquet}
SHAPES: dict[str, ModuleType] = {MEDMAX: medmax, LLAVA: llava}
# A folder's files that hold rows; reports (.txt) and DICOM files are gathered separately.
DATA_SUFFIXES = {".jsonl", ".json", ".ndjson", ".csv", ".tsv", ".parquet"}
# Columns that name a record's file when there is no `image` column (report CSVs, listings).
FILE_COLUMNS = ("file", "filename", "file_name", "file_path", "path", "image_path", "image_file",
                "dicom", "dicom_path", "dicom_file", "img", "img_path")
PEEK_OBJECTS = 20
_KNOWN = KNOWN_KEYS | medmax.MEDMAX_KEYS | llava.LLAVA_KEYS | set(FILE_COLUMNS)


class FormatError(ValueError):
    """A format or mapping that cannot read the file; the message says why."""


def container_of(path: Path) -> str:
    """From the bytes: Parquet's magic, a JSON array or objects, else delimited text."""
    if parquet.is_parquet(path):
        return PARQUET
    with open(path, "rb") as fh:
        head = fh.read(64 * 1024)
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"["):
        return JSON
    if text.startswith(b"{"):
        # One object per line is JSON lines (even when a line is broken); an object spread
        # over lines is a JSON document.
        lines = text.splitlines()
        starts = sum(1 for line in lines if line.startswith(b"{"))
        return JSONL if lines[0].rstrip().endswith(b"}") or starts > 1 else JSON
    return CSV


def kind_of(path: Path) -> str:
    """DICOM, a report, or the container of a data file."""
    if dicom.is_dicom(path):
        return DICOM
    if path.suffix.lower() == ".txt" and not parquet.is_parquet(path):
        return REPORTS
    return container_of(path)


@dataclass
class Reader:
    """Reads one data file: objects from the container, mapped, filled by the shape."""

    container: ModuleType
    shape: ModuleType
    mapping: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    layout: str = ""

    def read(self, path: Path, display: str) -> Iterator[ParsedRow]:
        stem = file_stem(display)
        for row, data in self.container.objects(path, display):
            if data is not None:
                self.shape.fill(row, mapping.apply(data, self.mapping, self.defaults), stem=stem)
            yield row

    def count(self, path: Path) -> int:
        return self.container.count(path)

    @property
    def name(self) -> str:
        return self.layout or self.shape.NAME


def _peek(container: ModuleType, path: Path, display: str) -> list[dict]:
    return [data for _, data in islice(container.objects(path, display), PEEK_OBJECTS) if data]


def reader_for(path: Path, display: str, fmt: str, user_map: dict | None = None) -> Reader:
    """The reader for one data file under `fmt`; FormatError when it cannot read it."""
    user_map = user_map or {}
    if fmt in CONTAINERS:
        container = CONTAINERS[fmt]
    else:
        detected = container_of(path)
        container = CONTAINERS[detected]
    sample = _peek(container, path, display)
    first = sample[0] if sample else {}
    if fmt in SHAPES:
        shape = SHAPES[fmt]
    else:
        shape = next((s for s in SHAPES.values() if first and s.looks_like(first)), records)
    reader = Reader(container=container, shape=shape, mapping=dict(user_map))
    if shape is records:
        _fit_records(reader, first)
    if first:
        missing = mapping.missing_columns(reader.mapping, first.keys())
        if missing and user_map:
            raise FormatError(
                f"--map: no column {', '.join(map(repr, missing))} in {display} "
                f"(columns: {', '.join(first.keys())})"
            )
        known = _KNOWN & mapping.apply(first, reader.mapping).keys()
        if not known:
            if container is csvfile:
                raise FormatError(csvfile.header_problem(path, list(first.keys())))
            raise FormatError(
                f"{display}: no known field in the first row (found: {', '.join(first.keys())}); "
                f"expected id, image, question, answer, caption, report, text, conversations, "
                f"... or a --map FIELD=COLUMN"
            )
    return reader


def _fit_records(reader: Reader, first: dict) -> None:
    """Recognise a dataset's own layout, and a file column standing for the image."""
    if not reader.mapping and first:
        layout = mapping.layout_of(first)
        if layout:
            reader.mapping, reader.defaults, reader.layout = dict(layout.mapping), layout.defaults, layout.name
    if not first:
        return
    # Spreadsheet headers: "Question", "Image", " Licence " name the fields they spell.
    for column in first:
        target = mapping.FIELDS.get(column.strip().lower().replace(" ", "_"))
        if target and column != target and target not in reader.mapping and target not in first:
            reader.mapping[target] = column
    if "image" not in reader.mapping and "image" not in first:
        lowered = {c.strip().lower(): c for c in first}
        column = next((lowered[c] for c in FILE_COLUMNS if c in lowered), None)
        if column:
            reader.mapping["image"] = column
