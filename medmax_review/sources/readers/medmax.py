"""MedMax JSONL: `text` (instruction<reserved08706>response, with <image>), `image_path`, `task`,
`source`, `credential`. Each row becomes a source record plus a candidate for review."""

from collections.abc import Iterator
from pathlib import Path

from medmax_review.core import medmax
from medmax_review.sources.readers.base import (
    ParsedRow,
    credential_value,
    external_id_for,
    source_and_meta,
    text_value,
)
from medmax_review.sources.readers.jsonl import count, read_objects

__all__ = ["count", "read", "looks_like_medmax"]

MEDMAX_KEYS = {"text", "image_path", "task", "source", "credential", "tokens", "id"}


def looks_like_medmax(data: dict) -> bool:
    return "text" in data and medmax.SEPARATOR in str(data.get("text"))


def _image_ref(row: ParsedRow, raw) -> str:
    if isinstance(raw, list):
        if len(raw) > 1:
            row.error("image_path", "MedMax allows at most one image per record")
        raw = raw[0] if raw else ""
    if raw is not None and not isinstance(raw, str):
        row.error("image_path", "must be a path")
        return ""
    return (raw or "").strip()


def _fill(row: ParsedRow, data: dict, *, stem: str) -> None:
    text = data.get("text")
    task = text_value(data.get("task")).strip()
    if not isinstance(text, str) or not text.strip():
        row.error("text", "missing field: text")
        parsed = None
    else:
        try:
            parsed = medmax.parse_text(text)
        except ValueError as exc:
            row.error("text", str(exc))
            parsed = None
    if not task:
        row.error("task", "missing field: task")
    elif task not in medmax.TASKS:
        row.error("task", f"unknown task {task!r} (expected one of {', '.join(medmax.TASKS)})")
    credential = credential_value(row, data.get("credential"))
    row.image_ref = _image_ref(row, data.get("image_path"))
    needs_image = parsed is not None and parsed.image_position != medmax.IMAGE_NONE
    # Credentialed rows are published without their image; the text alone is imported.
    if needs_image and not row.image_ref and credential != "yes":
        row.error("image_path", "missing field: image_path (the text has an <image> placeholder)")
    meta = {k: v for k, v in data.items() if k not in MEDMAX_KEYS}
    if "tokens" in data:
        meta["had_tokens"] = True
    row.record = {
        "source": source_and_meta(data.get("source"), stem=stem, meta=meta),
        "external_id": external_id_for(data.get("id"), data),
        "credential": credential,
        "meta": meta,
    }
    if parsed is None or row.errors:
        return
    instruction, response = parsed.instruction.strip(), parsed.response.strip()
    # The record keeps the source text where the task makes its role plain.
    if task == medmax.VQA:
        row.record.update(question=instruction, answer=response)
    elif task == medmax.IMAGE_CAPTIONING:
        row.record["caption"] = response
    row.candidate = {
        "task": task,
        "instruction": instruction,
        "response": response,
        "image_position": parsed.image_position,
    }


def read(path: Path, display: str) -> Iterator[ParsedRow]:
    return read_objects(path, display, _fill)
