"""JSON lines: one JSON object per line."""

import json
from collections.abc import Iterator
from pathlib import Path

from medmax_review.sources.readers.base import LINE, ParsedRow

UNIT = LINE


def objects(path: Path, display: str) -> Iterator[tuple[ParsedRow, dict | None]]:
    """Each non-blank line as (row, object); a line that is not a JSON object gets an error."""
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            row = ParsedRow(file=display, line=number, unit=UNIT)
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
