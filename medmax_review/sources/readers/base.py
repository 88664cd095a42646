"""What every reader yields: one ParsedRow per input row, carrying its file, line and problems."""

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

TEXT_FIELDS = ("caption", "inline_mention", "question", "answer", "report")
# Keys of the demo-data shape that map onto SourceRecord fields; the rest goes into meta.
KNOWN_KEYS = {
    "id", "image", "source", "license", "meta", "credential", "modality", "lang", "language",
    *TEXT_FIELDS,
}
# A dataset key such as "vqa_rad"; a longer citation is kept in meta instead.
_SOURCE_KEY = re.compile(r"^[A-Za-z0-9][\w.\-]{0,99}$")
MAX_EXTERNAL_ID = 200


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    field: str
    message: str

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


@dataclass
class ParsedRow:
    file: str
    line: int
    record: dict = field(default_factory=dict)  # SourceRecord field values
    image_ref: str = ""  # path of the image file, relative to the images folder
    image_data: bytes | None = None  # bytes already in hand (rendered DICOM)
    dicom: dict = field(default_factory=dict)  # window etc. for ImageAsset.dicom
    # CT window presets from the reader, {name: (PNG bytes, [width, level])}; once the import has
    # checked and written them, {name: CheckedImage} (the main image keeps their sha256s in dicom).
    preset_images: dict = field(default_factory=dict)
    candidate: dict | None = None  # task, instruction, response, image_position (MedMax rows)
    errors: list[RowError] = field(default_factory=list)

    def error(self, field_name: str, message: str) -> None:
        self.errors.append(RowError(self.file, self.line, field_name, message))


def stable_hash(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def text_value(value) -> str:
    """JSON numbers and booleans become text; None becomes empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def source_and_meta(raw_source, *, stem: str, meta: dict) -> str:
    source = text_value(raw_source).strip()
    if source and _SOURCE_KEY.match(source):
        return source
    if source:
        meta.setdefault("source_citation", source)
    return stem


def external_id_for(raw_id, data: dict) -> str:
    given = text_value(raw_id).strip()
    if given and len(given) <= MAX_EXTERNAL_ID:
        return given
    return stable_hash(given or data)


def credential_value(row: ParsedRow, raw) -> str:
    if raw is None or raw == "":
        return "no"
    value = text_value(raw).strip().lower()
    if value in ("yes", "no"):
        return value
    row.error("credential", f'must be "yes" or "no", got {text_value(raw)!r}')
    return "no"


def fill_record(row: ParsedRow, data: dict, *, stem: str) -> None:
    """Validate one row of the demo-data shape (id, image, source, license, meta, texts)."""
    meta = data.get("meta") or {}
    if not isinstance(meta, dict):
        row.error("meta", "must be a JSON object")
        meta = {}
    meta = dict(meta)
    for key, value in data.items():
        if key not in KNOWN_KEYS and value not in (None, ""):
            meta.setdefault(key, value)
    texts = {}
    for name in TEXT_FIELDS:
        value = data.get(name)
        if isinstance(value, (dict, list)):
            row.error(name, "must be text, not a JSON object or list")
            value = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            meta.setdefault(f"{name}_raw_type", type(value).__name__)
        texts[name] = text_value(value).strip()
    if not any(texts.values()):
        row.error("", "missing field: one of " + ", ".join(TEXT_FIELDS) + " is required")
    if bool(texts["question"]) != bool(texts["answer"]):
        missing = "answer" if texts["question"] else "question"
        row.error(missing, f"missing field: {missing} (question and answer come together)")
    credential = credential_value(row, data.get("credential"))
    image = data.get("image")
    if image is not None and not isinstance(image, str):
        row.error("image", "must be a path")
        image = ""
    row.image_ref = (image or "").strip()
    if not row.image_ref and credential != "yes":
        row.error("image", "missing field: image")
    modality = text_value(data.get("modality") or meta.get("modality")).strip()
    language = text_value(data.get("lang") or data.get("language")).strip()
    row.record = {
        "source": source_and_meta(data.get("source"), stem=stem, meta=meta),
        "external_id": external_id_for(data.get("id"), data),
        "license": text_value(data.get("license")).strip()[:100],
        "credential": credential,
        "modality": modality[:40],
        "language": language[:10],
        **texts,
        "meta": meta,
    }


def file_stem(display: str) -> str:
    return Path(display.split(":")[-1]).stem


def join_name(display: str, relative: Path) -> str:
    """Names for the report: "data.zip:rows.jsonl" inside a ZIP, "folder/rows.jsonl" otherwise."""
    return f"{display}{relative}" if display.endswith(":") else f"{display}/{relative}"
