"""JSON documents: an array of objects (pretty-printed or on one line) or one or more objects.

Streamed with ijson, so a file of any size is read one item at a time; problems name the
array index (item 0 is the first).
"""

from collections.abc import Iterator
from pathlib import Path

import ijson

from medmax_review.sources.readers.base import ITEM, ParsedRow, plain

UNIT = ITEM


def _first_char(path: Path) -> bytes:
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf").lstrip()
    return head[:1]


def _items(fh, path: Path):
    # "item" walks the elements of a top-level array; "" reads top-level objects one by one.
    if _first_char(path) == b"[":
        return ijson.items(fh, "item", use_float=True)
    return ijson.items(fh, "", multiple_values=True, use_float=True)


def objects(path: Path, display: str) -> Iterator[tuple[ParsedRow, dict | None]]:
    index = 0
    with open(path, "rb") as fh:
        try:
            for index, data in enumerate(_items(fh, path)):  # noqa: B007 - used after the loop
                row = ParsedRow(file=display, line=index, unit=UNIT)
                if not isinstance(data, dict):
                    row.error("", f"expected a JSON object, got {type(data).__name__}")
                    yield row, None
                    continue
                yield row, plain(data)
        except ijson.JSONError as exc:
            row = ParsedRow(file=display, line=index + 1 if index else 0, unit=UNIT)
            row.error("", f"bad JSON: {exc}; nothing after this point was read")
            yield row, None
        except UnicodeDecodeError as exc:
            row = ParsedRow(file=display, line=index, unit=UNIT)
            row.error("", f"file is not UTF-8 ({exc.reason})")
            yield row, None


def count(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return sum(1 for _ in _items(fh, path))
    except (ijson.JSONError, UnicodeDecodeError):
        return 0
