"""MedMax rows: `text` (instruction<reserved08706>response, with <image>), `image_path`, `task`,
`source`, `credential`. Each row becomes a source record plus a candidate for review.

Task names are read in any common spelling ("VQA", "Image Generation", "report_understanding");
the spelling the row used is kept in the candidate's provenance as `task_name`.
"""

from medmax_review.core import medmax
from medmax_review.sources.readers.base import (
    ParsedRow,
    credential_value,
    external_id_for,
    image_value,
    source_and_meta,
    text_value,
)

NAME = "medmax"
MEDMAX_KEYS = {"text", "image_path", "image", "task", "source", "credential", "tokens", "id"}


def looks_like(data: dict) -> bool:
    return "text" in data and medmax.SEPARATOR in str(data.get("text"))


def _task(row: ParsedRow, raw) -> str:
    name = text_value(raw).strip()
    if not name:
        row.error("task", "missing field: task")
        return ""
    task = medmax.task_from_name(name)
    if task is None:
        row.error("task", f"unknown task {name!r}; accepted names: {medmax.task_names_accepted()}")
        return ""
    return task


def fill(row: ParsedRow, data: dict, *, stem: str) -> None:
    text = data.get("text")
    task = _task(row, data.get("task"))
    if not isinstance(text, str) or not text.strip():
        row.error("text", "missing field: text")
        parsed = None
    else:
        try:
            parsed = medmax.parse_text(text)
        except ValueError as exc:
            row.error("text", str(exc))
            parsed = None
    credential = credential_value(row, data.get("credential"))
    # MedMax JSONL names a file in image_path; a Hugging Face Parquet copy holds the bytes in
    # an Image column called image.
    image_field = "image_path" if data.get("image_path") not in (None, "") or "image" not in data \
        else "image"
    image_value(row, data.get(image_field), image_field)
    needs_image = parsed is not None and parsed.image_position != medmax.IMAGE_NONE
    # Credentialed rows are published without their image; the text alone is imported.
    if needs_image and not row.image_ref and row.image_data is None and credential != "yes":
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
    row.candidates = [{
        "task": task,
        "instruction": instruction,
        "response": response,
        "image_position": parsed.image_position,
        "provenance": {"task_name": text_value(data.get("task")).strip()},
    }]
