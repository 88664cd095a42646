"""Pure text helpers for the review screen: word diffs and marked spans, as plain segments.

Templates render the segments with auto-escaping, so model or reviewer text is never trusted
as HTML.
"""

import difflib
import re

EQUAL, INSERT, DELETE = "eq", "ins", "del"
_TOKENS = re.compile(r"\s+|\S+")


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """[(op, text)] turning `old` into `new`, word by word (whitespace kept as its own tokens).

    Changes separated only by whitespace read as one deletion and one insertion, so a rewritten
    sentence does not interleave into single-word fragments.
    """
    a, b = _TOKENS.findall(old or ""), _TOKENS.findall(new or "")
    segments: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            _append(segments, EQUAL, "".join(a[i1:i2]))
            continue
        if tag in ("delete", "replace"):
            _append(segments, DELETE, "".join(a[i1:i2]))
        if tag in ("insert", "replace"):
            _append(segments, INSERT, "".join(b[j1:j2]))
    return _fold_runs(segments)


def _fold_runs(segments: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(segments):
        if segments[i][0] == EQUAL:
            _append(out, EQUAL, segments[i][1])
            i += 1
            continue
        removed, added = [], []
        while i < len(segments):
            op, text = segments[i]
            if op == DELETE:
                removed.append(text)
            elif op == INSERT:
                added.append(text)
            elif text.isspace() and i + 1 < len(segments) and segments[i + 1][0] != EQUAL:
                removed.append(text)
                added.append(text)
            else:
                break
            i += 1
        _append(out, DELETE, "".join(removed))
        _append(out, INSERT, "".join(added))
    return out


def _append(segments: list[tuple[str, str]], op: str, text: str) -> None:
    if not text:
        return
    if segments and segments[-1][0] == op:
        segments[-1] = (op, segments[-1][1] + text)
    else:
        segments.append((op, text))


def diff_changed(segments: list[tuple[str, str]]) -> bool:
    return any(op != EQUAL for op, _ in segments)


def reasoned_segments(text: str, spans: list) -> list[tuple[str, tuple[str, ...]]]:
    """[(text, reasons)] covering `text`: cut wherever a span starts or ends, each piece with the
    reasons of the spans covering it (empty when unmarked). A span is [start, end] or
    [start, end, reason].

    Spans out of range or malformed are clipped or ignored: scores come from another process and
    may have been computed on an older text. Adjacent pieces with the same reasons are joined.
    """
    text = text or ""
    ranges = []
    for span in spans or []:
        try:
            start, end = int(span[0]), int(span[1])
        except (TypeError, ValueError, IndexError):
            continue
        reason = str(span[2]) if len(span) > 2 and span[2] else ""
        start, end = max(0, start), min(len(text), end)
        if start < end:
            ranges.append((start, end, reason))
    cuts = sorted({0, len(text), *(s for s, _, _ in ranges), *(e for _, e, _ in ranges)})
    segments: list[tuple[str, tuple[str, ...]]] = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        covering = [r for s, e, r in ranges if s <= start and end <= e]
        # A marked piece always has a reason, even when its span named none.
        reasons = tuple(dict.fromkeys(r for r in covering if r)) or (("marked",) if covering else ())
        if segments and segments[-1][1] == reasons:
            segments[-1] = (segments[-1][0] + text[start:end], reasons)
        else:
            segments.append((text[start:end], reasons))
    return segments or [("", ())]
