"""CSV in the demo-data shape: a header row; `meta` may hold a JSON object; other columns go to meta."""

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from medmax_review.sources.readers.base import ParsedRow, file_stem, fill_record


def _rows(path: Path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        start = 2
        for data in reader:
            yield start, reader.fieldnames or [], data
            start = reader.line_num + 1


def count(path: Path) -> int:
    try:
        return sum(1 for _ in _rows(path))
    except (csv.Error, UnicodeDecodeError):
        return 0


def read(path: Path, display: str) -> Iterator[ParsedRow]:
    stem = file_stem(display)
    try:
        for line, header, data in _rows(path):
            row = ParsedRow(file=display, line=line)
            if "id" not in header and "image" not in header:
                row.error("", "the header row must name the columns (id, image, source, ...)")
                yield row
                return
            if None in data:
                row.error("", f"row has {len(header) + len(data[None])} fields, header has {len(header)}")
                yield row
                continue
            values = {k: v for k, v in data.items() if v not in (None, "")}
            if "meta" in values:
                try:
                    values["meta"] = json.loads(values["meta"])
                except json.JSONDecodeError as exc:
                    row.error("meta", f"bad JSON: {exc.msg} at column {exc.colno}")
                    yield row
                    continue
            fill_record(row, values, stem=stem)
            yield row
    except UnicodeDecodeError as exc:
        row = ParsedRow(file=display, line=0)
        row.error("", f"file is not UTF-8 ({exc.reason})")
        yield row
    except csv.Error as exc:
        row = ParsedRow(file=display, line=0)
        row.error("", f"bad CSV: {exc}")
        yield row
