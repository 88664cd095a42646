"""JSON lines: one JSON object per line."""

import json
from collections.abc import Iterator
from pathlib import Path

import orjson
from django.conf import settings

from medmax_review.sources.readers.base import LINE, ParsedRow

UNIT = LINE
# Every digit as "0", every other byte as a space: a run of 20 digits is then found by a plain
# substring search, several times faster than a regular expression over every line.
_DIGITS_AS_ZERO = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))
_LONG_RUN = b"0" * 20


def _lines(fh, limit: int) -> Iterator[bytes | None]:
    """The file's lines; None for a line over `limit` bytes, which is skipped unread."""
    while raw := fh.readline(limit + 1):
        if len(raw) > limit and not raw.endswith(b"\n"):
            while (rest := fh.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield None
        else:
            yield raw


def _parse(raw: bytes):
    """orjson for a valid line (a third of the time); a line it refuses (a byte order mark,
    NaN, bad JSON) is read by json, which accepts what it can and names what is wrong in the
    words of the report. So is a line with a run of 20 digits: orjson would read an integer
    past 64 bits as a float."""
    if _LONG_RUN not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw.decode("utf-8-sig"))


def objects(path: Path, display: str) -> Iterator[tuple[ParsedRow, dict | None]]:
    """Each non-blank line as (row, object); a line that is not a JSON object gets an error.

    Lines are read at most MEDMAX_MAX_LINE_BYTES at a time: a one-line file of gigabytes is
    refused without being held in memory."""
    limit = settings.MEDMAX_MAX_LINE_BYTES
    with open(path, "rb") as fh:
        for number, raw in enumerate(_lines(fh, limit), start=1):
            row = ParsedRow(file=display, line=number, unit=UNIT)
            if raw is None:
                row.error("", f"line is longer than {limit} bytes (MEDMAX_MAX_LINE_BYTES); skipped")
                yield row, None
                continue
            if not raw.strip():
                continue
            try:
                data = _parse(raw)
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
        return sum(1 for line in _lines(fh, settings.MEDMAX_MAX_LINE_BYTES)
                   if line is None or line.strip())
