"""CSV with a header row, as spreadsheets save it: the delimiter (`,` `;` tab `|`) is sniffed,
UTF-8 with or without a BOM, any line ends. A `meta` column may hold a JSON object."""

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from medmax_review.sources.readers.base import LINE, ParsedRow

UNIT = LINE
DELIMITERS = ",;\t|"
_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SNIFF_BYTES = 64 * 1024


def delimiter_of(path: Path) -> str:
    """The delimiter the header line uses: the candidate splitting it into most columns,
    checked by csv.Sniffer on the first lines when they agree."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        sample = fh.read(SNIFF_BYTES)
    header = sample.splitlines()[0] if sample else ""
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        # One column, or quoting the sniffer cannot settle: the header decides.
        return max(DELIMITERS, key=header.count) if any(d in header for d in DELIMITERS) else ","


def delimiter_name(delimiter: str) -> str:
    return _NAMES.get(delimiter, repr(delimiter))


def _rows(path: Path, delimiter: str):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        start = 2
        for data in reader:
            yield start, reader.fieldnames or [], data
            start = reader.line_num + 1


def count(path: Path) -> int:
    try:
        return sum(1 for _ in _rows(path, delimiter_of(path)))
    except (csv.Error, UnicodeDecodeError, OSError):
        return 0


def objects(path: Path, display: str) -> Iterator[tuple[ParsedRow, dict | None]]:
    try:
        delimiter = delimiter_of(path)
        for line, header, data in _rows(path, delimiter):
            row = ParsedRow(file=display, line=line, unit=UNIT)
            if None in data:
                row.error("", f"row has {len(header) + len(data[None])} fields, header has "
                              f"{len(header)}")
                yield row, None
                continue
            values = {k.strip(): v for k, v in data.items() if k and v not in (None, "")}
            if "meta" in values:
                try:
                    values["meta"] = json.loads(values["meta"])
                except json.JSONDecodeError as exc:
                    row.error("meta", f"bad JSON: {exc.msg} at column {exc.colno}")
                    yield row, None
                    continue
            yield row, values
    except UnicodeDecodeError as exc:
        row = ParsedRow(file=display, line=0, unit=UNIT)
        row.error("", f"file is not UTF-8 ({exc.reason})")
        yield row, None
    except csv.Error as exc:
        row = ParsedRow(file=display, line=0, unit=UNIT)
        row.error("", f"bad CSV: {exc}")
        yield row, None


def header_problem(path: Path, found: list[str]) -> str:
    """The message for a header that names none of the columns a reader knows."""
    try:
        name = delimiter_name(delimiter_of(path))
    except (OSError, UnicodeDecodeError):
        name = "comma"
    return (f"the header row names no known column (read as {name}-separated, found: "
            f"{', '.join(found) or 'nothing'}); expected id, image, question, answer, caption, "
            f"report, ... or a --map FIELD=COLUMN")
