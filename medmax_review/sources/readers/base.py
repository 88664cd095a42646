"""What every reader yields: one ParsedRow per input row, carrying its file, line and problems."""

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
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
MISSING_TEXT = "missing field: one of " + ", ".join(TEXT_FIELDS) + " is required"


MAX_MESSAGE = 300
_SPACE = re.compile(r"\s+")
LINE, ITEM, ROW = "line", "item", "row"  # what RowError.line counts: file lines, array items, table rows


def one_line(message: str) -> str:
    """A problem as one short line: no embedded tracebacks or multi-line library messages."""
    text = _SPACE.sub(" ", str(message)).strip()
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    field: str
    message: str
    unit: str = LINE

    def __post_init__(self):
        object.__setattr__(self, "message", one_line(self.message))

    @property
    def where(self) -> str:
        """"rows.jsonl:12", "data.json item 3", "shard.parquet row 7", or the file alone."""
        if not self.line and self.unit != ITEM:
            return self.file
        return f"{self.file}:{self.line}" if self.unit == LINE else f"{self.file} {self.unit} {self.line}"

    def as_dict(self) -> dict:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message,
                "unit": self.unit}

    def __str__(self) -> str:
        return f"{self.where}: {self.field + ': ' if self.field else ''}{self.message}"


@dataclass
class ParsedRow:
    file: str
    line: int
    unit: str = LINE
    record: dict = field(default_factory=dict)  # SourceRecord field values
    image_ref: str = ""  # path of the image file, relative to the images folder
    image_data: bytes | None = None  # bytes already in hand (rendered DICOM)
    dicom: dict = field(default_factory=dict)  # window etc. for ImageAsset.dicom
    # CT window presets from the reader, {name: (PNG bytes, [width, level])}; once the import has
    # checked and written them, {name: CheckedImage} (the main image keeps their sha256s in dicom).
    preset_images: dict = field(default_factory=dict)
    # Candidates the row already holds (MedMax rows, LLaVA turns): task, instruction, context,
    # response, image_position, sample_index, provenance.
    candidates: list[dict] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    def error(self, field_name: str, message: str) -> None:
        self.errors.append(RowError(self.file, self.line, field_name, message, self.unit))


def _bytes_digest(value):
    if isinstance(value, bytes | bytearray | memoryview):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    return str(value)


def stable_hash(value) -> str:
    # Embedded bytes (an image inside a Parquet row) count by their own hash.
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=_bytes_digest)
    return hashlib.sha256(text.encode()).hexdigest()


def plain(value):
    """Values as JSON columns want them: Decimal (ijson) as float, dates (Parquet) as ISO text,
    through nested lists and objects."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def json_safe(value):
    """The value as JSON can hold it; None for what it cannot (raw bytes, embedded images, and
    NaN or infinity, which Python's json reads but PostgreSQL's JSON refuses)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        if "bytes" in value and isinstance(value.get("bytes"), bytes | bytearray):
            return None
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


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
    meta = json_safe(meta)
    for key, value in data.items():
        if key not in KNOWN_KEYS and value not in (None, "") and json_safe(value) is not None:
            meta.setdefault(key, json_safe(value))
    texts = {}
    for name in TEXT_FIELDS:
        value = data.get(name)
        if value.__class__ is str:  # nearly every value: no checks to make
            texts[name] = value.strip()
            continue
        if isinstance(value, (dict, list)):
            row.error(name, "must be text, not a JSON object or list")
            value = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            meta.setdefault(f"{name}_raw_type", type(value).__name__)
        texts[name] = text_value(value).strip()
    credential = credential_value(row, data.get("credential"))
    image_value(row, data.get("image"), "image")
    has_image = bool(row.image_ref) or row.image_data is not None
    # An image alone is kept only if it turns out to be DICOM (see needs_text).
    if not any(texts.values()) and not has_image:
        row.error("", MISSING_TEXT)
    if bool(texts["question"]) != bool(texts["answer"]):
        missing = "answer" if texts["question"] else "question"
        row.error(missing, f"missing field: {missing} (question and answer come together)")
    if not has_image and credential != "yes":
        row.error("image", "missing field: image")
    modality = text_value(data.get("modality") or meta.get("modality")).strip()
    language = text_value(data.get("language") or data.get("lang")).strip()
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


def image_value(row: ParsedRow, raw, field_name: str) -> None:
    """Set the row's image from a path, a one-element list, or a Hugging Face Image value
    ({"bytes", "path"}): embedded bytes are kept as data, a bare path as a reference."""
    if isinstance(raw, list):
        if len(raw) > 1:
            row.error(field_name, f"has {len(raw)} images; MedMax keeps at most one per record")
            return
        raw = raw[0] if raw else None
    if isinstance(raw, dict) and ("bytes" in raw or "path" in raw):
        if raw.get("bytes"):
            row.image_data = bytes(raw["bytes"])
            return
        raw = raw.get("path")
    if raw is not None and not isinstance(raw, str):
        row.error(field_name, "must be a path")
        return
    row.image_ref = (raw or "").strip()


def needs_text(row: ParsedRow) -> bool:
    """A record with no text and no candidate is kept only when its image is DICOM: the
    header says what the image is, and a vision model can write its text."""
    return not row.candidates and not row.dicom and not any(
        row.record.get(name) for name in TEXT_FIELDS
    )


def file_stem(display: str) -> str:
    return Path(display.split(":")[-1]).stem


def join_name(display: str, relative: Path) -> str:
    """Names for the report: "data.zip:rows.jsonl" inside a ZIP, "folder/rows.jsonl" otherwise."""
    return f"{display}{relative}" if display.endswith(":") else f"{display}/{relative}"
