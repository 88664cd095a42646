"""Prompt templates: the safe formatter, the shipped defaults, and parsing what models answer."""

import json
import re
import string

from medmax_review.core import medmax

# The only names a template may use: plain fields of the source record.
ALLOWED_FIELDS = (
    "caption", "inline_mention", "question", "answer", "report", "modality", "source",
    "image_details",
)
SOURCE_TEXT_FIELDS = ("caption", "inline_mention", "question", "answer", "report")

SYSTEM_PROMPT = (
    "You write instruction-tuning examples for a biomedical assistant. Use only facts stated in "
    "the source text you are given; never invent findings. Answer with one JSON object only."
)

OUTPUT_SCHEMA = {
    "type": "object",
    "properties": {"instruction": {"type": "string"}, "response": {"type": "string"}},
    "required": ["instruction", "response"],
}

# Which record text each task needs: any one group of fields, all present.
TASK_NEEDS = {
    medmax.VQA: [("question", "answer")],
    medmax.IMAGE_CAPTIONING: [("caption",)],
    medmax.IMAGE_GENERATION: [("caption",)],
    medmax.VISUAL_CHAT: [("question", "answer"), ("caption",)],
    medmax.REPORT_UNDERSTANDING: [("report",)],
    medmax.MULTIMODAL_GENERATION: [("caption",)],
}

# Tasks a vision-capable model can write from the image alone, for a record with no text.
VISION_TASKS = (medmax.VQA, medmax.IMAGE_CAPTIONING, medmax.VISUAL_CHAT)
IMAGE_ONLY_NOTE = (
    "There is no source text for this image. Write only what the attached image shows, with "
    "the image details above as context; do not name a diagnosis the image does not make plain."
)
# DICOM header fields kept at import that describe an image without identifying anyone.
IMAGE_DETAIL_KEYS = (
    ("body_part", "body part"), ("study_description", "study"),
    ("series_description", "series"), ("view_position", "view"),
)

# Where the image goes: understanding tasks see it first, generation tasks produce it.
IMAGE_POSITION = {
    medmax.VQA: medmax.IMAGE_BEFORE_INSTRUCTION,
    medmax.IMAGE_CAPTIONING: medmax.IMAGE_BEFORE_INSTRUCTION,
    medmax.VISUAL_CHAT: medmax.IMAGE_BEFORE_INSTRUCTION,
    medmax.REPORT_UNDERSTANDING: medmax.IMAGE_BEFORE_INSTRUCTION,
    medmax.IMAGE_GENERATION: medmax.IMAGE_IN_RESPONSE,
    medmax.MULTIMODAL_GENERATION: medmax.IMAGE_IN_RESPONSE,
}


class TemplateError(ValueError):
    pass


class SafeFormatter(string.Formatter):
    """str.format limited to plain named fields from ALLOWED_FIELDS.

    No attribute or index access ({question.__class__}, {caption[0]}), no positional fields,
    no conversions and no format specs: a template cannot reach anything but the record's text.
    """

    def get_field(self, field_name, args, kwargs):
        if field_name not in ALLOWED_FIELDS:
            raise TemplateError(
                f"{{{field_name}}} is not allowed; use only {', '.join('{' + f + '}' for f in ALLOWED_FIELDS)}"
            )
        return kwargs.get(field_name, ""), field_name

    def convert_field(self, value, conversion):
        if conversion:
            raise TemplateError(f"conversions such as !{conversion} are not allowed")
        return value

    def format_field(self, value, format_spec):
        if format_spec:
            raise TemplateError(f"format specs such as :{format_spec} are not allowed")
        return str(value)


_formatter = SafeFormatter()


def template_fields(text: str) -> list[str]:
    """The field names a template uses; TemplateError names the first bad one (with its line)."""
    names = []
    for number, line in enumerate(text.splitlines() or [""], start=1):
        try:
            parsed = list(_formatter.parse(line))
        except ValueError as exc:
            raise TemplateError(f"line {number}: {exc} (write {{{{ and }}}} for literal braces)") from None
        for _literal, name, spec, conversion in parsed:
            if name is None:
                continue
            try:
                _formatter.get_field(name, (), {})
                _formatter.convert_field("", conversion)
                _formatter.format_field("", spec)
            except TemplateError as exc:
                raise TemplateError(f"line {number}: {exc}") from None
            names.append(name)
    return names


def template_render(text: str, fields: dict) -> str:
    """Fill a template; a line whose every field is empty is dropped (e.g. no inline mention)."""
    template_fields(text)
    kept = []
    for line in text.splitlines():
        names = [name for _l, name, _s, _c in _formatter.parse(line) if name is not None]
        if names and not any(str(fields.get(n, "")).strip() for n in names):
            continue
        kept.append(_formatter.vformat(line, (), fields))
    return "\n".join(kept).strip()


def image_details(record) -> str:
    """"body part: CHEST; view: PA" from the non-identifying DICOM tags kept at import."""
    meta = record.meta if isinstance(getattr(record, "meta", None), dict) else {}
    tags = meta.get("dicom") if isinstance(meta.get("dicom"), dict) else meta
    parts = [f"{label}: {str(tags.get(key) or '').strip()}" for key, label in IMAGE_DETAIL_KEYS
             if str(tags.get(key) or "").strip()]
    return "; ".join(parts)


def record_fields(record) -> dict:
    fields = {name: (getattr(record, name, "") or "").strip() for name in ALLOWED_FIELDS
              if name != "image_details"}
    fields["image_details"] = image_details(record)
    return fields


def record_has_text(fields: dict) -> bool:
    return any(fields.get(name) for name in SOURCE_TEXT_FIELDS)


def record_missing(task: str, fields: dict) -> str:
    """Why this record cannot feed this task ("" when it can)."""
    groups = TASK_NEEDS[task]
    if any(all(fields.get(name) for name in group) for group in groups):
        return ""
    wanted = " or ".join(" and ".join(group) for group in groups)
    return f"{task} needs {wanted}"


_JSON_REPLY = 'Reply with JSON only: {{"instruction": "...", "response": "..."}}'
_GROUNDING = "Use only facts from the source text. Do not add diagnoses it does not state."
_SOURCE_LINES = (
    "Source dataset: {source}\n"
    "Modality: {modality}\n"
    "Figure caption: {caption}\n"
    "How the article mentions the figure: {inline_mention}\n"
    "Image details: {image_details}\n"
)

DEFAULT_TEMPLATES = {
    medmax.VQA: (
        "Turn this visual question and answer about a biomedical image into a training example.\n"
        + _SOURCE_LINES
        + "Question: {question}\nAnswer: {answer}\n"
        "The instruction is the question as a user looking at the image would ask it; the "
        "response is the answer, short and exact.\n" + _GROUNDING + "\n" + _JSON_REPLY
    ),
    medmax.IMAGE_CAPTIONING: (
        "Write a request to describe a biomedical image, and its answer.\n"
        + _SOURCE_LINES
        + "The instruction asks to describe the image; the response describes it using the "
        "caption, without citations, URLs or licence text.\n" + _GROUNDING + "\n" + _JSON_REPLY
    ),
    medmax.IMAGE_GENERATION: (
        "Write a request that asks an assistant to generate this biomedical image.\n"
        + _SOURCE_LINES
        + "The instruction describes the image to create, as a caption-like request; the "
        'response is exactly "<image>".\n' + _GROUNDING + "\n" + _JSON_REPLY
    ),
    medmax.VISUAL_CHAT: (
        "Write one turn of a conversation between a clinician and an assistant about an image.\n"
        + _SOURCE_LINES
        + "Question: {question}\nAnswer: {answer}\n"
        "The instruction is the clinician's question; the response is a helpful conversational "
        "answer.\n" + _GROUNDING + "\n" + _JSON_REPLY
    ),
    medmax.REPORT_UNDERSTANDING: (
        "Write a request for a radiology report of this study, and the report.\n"
        "Modality: {modality}\nReport: {report}\n"
        "The instruction asks for the findings and impression; the response is the report, "
        "lightly cleaned.\n" + _GROUNDING + "\n" + _JSON_REPLY
    ),
    medmax.MULTIMODAL_GENERATION: (
        "Write a user request and an answer that explains a finding and shows the image.\n"
        + _SOURCE_LINES
        + 'The response is explanatory text that contains the placeholder "<image>" exactly '
        "once, where the image belongs.\n" + _GROUNDING + "\n" + _JSON_REPLY
    ),
}

_REFUSALS = re.compile(
    r"^\s*(i'?m sorry|i am sorry|i cannot|i can'?t|i'm unable|i am unable|as an ai\b|"
    r"sorry, (but )?i)",
    re.IGNORECASE,
)


class OutputError(ValueError):
    pass


def output_parse(*, task: str, text: str, finish_reason: str) -> tuple[str, str]:
    """(instruction, response) from a model's reply, or OutputError saying what is wrong.

    Nothing is half-parsed: a reply is either complete and well-formed, or rejected whole.
    """
    if finish_reason == "length":
        raise OutputError("output truncated (finish_reason=length): raise max tokens")
    if finish_reason == "content_filter":
        raise OutputError("output blocked by the server's content filter")
    if not text.strip():
        raise OutputError("empty output")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OutputError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(data, dict):
        raise OutputError(f"JSON is a {type(data).__name__}, not an object")
    missing = [key for key in ("instruction", "response") if key not in data]
    if missing:
        raise OutputError(f"JSON lacks the key(s): {', '.join(missing)}")
    instruction, response = data["instruction"], data["response"]
    if not isinstance(instruction, str) or not isinstance(response, str):
        raise OutputError("instruction and response must be strings")
    instruction, response = instruction.strip(), response.strip()
    if not instruction:
        raise OutputError("empty instruction")
    generates_image = IMAGE_POSITION[task] == medmax.IMAGE_IN_RESPONSE
    if not response and not generates_image:
        raise OutputError("empty response")
    for label, value in (("instruction", instruction), ("response", response)):
        if _REFUSALS.search(value):
            raise OutputError(f"the model refused in its {label}: {value[:80]!r}")
    if medmax.IMAGE in instruction:
        raise OutputError(f"{medmax.IMAGE} in the instruction; the image slot is added for you")
    if medmax.SEPARATOR in instruction + response:
        raise OutputError(f"the output contains the separator {medmax.SEPARATOR}")
    images = response.count(medmax.IMAGE)
    if task == medmax.MULTIMODAL_GENERATION and images != 1:
        raise OutputError(f"the response must contain {medmax.IMAGE} exactly once, found {images}")
    if images > 1:
        raise OutputError(f"the response has {images} {medmax.IMAGE} placeholders; at most one")
    if images and not generates_image:
        raise OutputError(f"{medmax.IMAGE} in the response of an understanding task")
    return instruction, response
