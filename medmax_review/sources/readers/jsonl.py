"""JSONL in the demo-data shape: one JSON object per line."""

import json
from collections.abc import Iterator
from pathlib import Path

from medmax_review.sources.readers.base import ParsedRow, file_stem, fill_record


def json_lines(path: Path, display: str) -> Iterator[tuple[ParsedRow, dict | None]]:
    """Each non-blank line as (row, object); a line that is not a JSON object gets an error."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            row = ParsedRow(file=display, line=number)
            try:
                data = json.loads(raw.decode("utf-8-sig"))
            except UnicodeDecodeError as exc:
                row.error("", f"line is not UTF-8 ({exc.reason})")
                yield row, None
                continue
            except json.JSONDecodeError as exc:
                row.error("", f"bad JSON: {exc.msg} at column {exc.colno}")
                yield row, None
                continue
            if not isinstance(data, dict):
                row.error("", f"expected a JSON object, got {type(data).__name__}")
                yield row, None
                continue
            yield row, data


def count(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def read_objects(path: Path, display: str, fill) -> Iterator[ParsedRow]:
    """Rows of a JSON-lines file, each object validated by `fill(row, data, stem=...)`."""
    stem = file_stem(display)
    for row, data in json_lines(path, display):
        if data is not None:
            fill(row, data, stem=stem)
        yield row


def read(path: Path, display: str) -> Iterator[ParsedRow]:
    return read_objects(path, display, fill_record)
