"""The deterministic backend: MedMax's own short templates around the source text. No network.

It answers with the same JSON object an LLM is asked for, so its output goes through the same
parsing as every other backend's.
"""

import hashlib
import json

from medmax_review.core import medmax
from medmax_review.generation.backends.base import BackendError, GenerationRequest, GenerationResult

NAME = "template"
MODEL = "medmax-templates-v1"

CAPTION_REQUESTS = [
    "Describe this image.",
    "What is shown in this image?",
    "Write a caption for this figure.",
    "Describe the findings visible in this medical image.",
    "Give a short description of this image.",
    "Summarize what this image shows.",
]
GENERATION_REQUESTS = [
    "Generate an image of {}",
    "Create a biomedical image showing {}",
    "Show me an image of {}",
    "Produce an image that matches this description: {}",
]
CHAT_OPENERS = [
    "What can you tell me about this image?",
    "Could you walk me through this image?",
    "Please explain what this image shows.",
]
REPORT_REQUESTS = [
    "Write the radiology report for this image.",
    "Describe the findings and impression for this study.",
]
MULTIMODAL_REQUESTS = [
    "Explain this finding and show an example image: {}",
    "Describe {} and include an illustrative image.",
]


def _pick(options: list[str], fields: dict, salt: int) -> str:
    """Choose by a hash of the record's text, so the same record always gets the same phrase."""
    key = json.dumps(fields, sort_keys=True, ensure_ascii=False) + f"|{salt}"
    digest = hashlib.sha256(key.encode()).digest()
    return options[int.from_bytes(digest[:4], "big") % len(options)]


def _first_sentence(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    for end in (". ", "? ", "! "):
        cut = text.find(end)
        if 0 < cut < limit:
            return text[:cut]
    return text[:limit].rstrip(" .")


def _lowered(phrase: str) -> str:
    """Lower-case the first letter to fit mid-sentence, but keep acronyms such as "CT"."""
    return phrase if phrase[:2].isupper() else phrase[:1].lower() + phrase[1:]


def build_pair(task: str, fields: dict, salt: int = 0) -> dict:
    """{instruction, response} for one record and task; BackendError names a missing field."""
    caption = fields.get("caption", "").strip()
    question = fields.get("question", "").strip()
    answer = fields.get("answer", "").strip()
    report = fields.get("report", "").strip()

    def need(name: str, value: str) -> str:
        if not value:
            raise BackendError(f"the record has no {name}, which {task} needs")
        return value

    if task == medmax.VQA:
        return {"instruction": need("question", question), "response": need("answer", answer)}
    if task == medmax.IMAGE_CAPTIONING:
        return {"instruction": _pick(CAPTION_REQUESTS, fields, salt), "response": need("caption", caption)}
    if task == medmax.IMAGE_GENERATION:
        subject = _lowered(_first_sentence(need("caption", caption)))
        return {"instruction": _pick(GENERATION_REQUESTS, fields, salt).format(subject), "response": medmax.IMAGE}
    if task == medmax.VISUAL_CHAT:
        if question and answer:
            return {"instruction": question, "response": f"Looking at the image: {answer}."}
        return {"instruction": _pick(CHAT_OPENERS, fields, salt), "response": need("caption or question", caption)}
    if task == medmax.REPORT_UNDERSTANDING:
        return {"instruction": _pick(REPORT_REQUESTS, fields, salt), "response": need("report", report)}
    if task == medmax.MULTIMODAL_GENERATION:
        subject = _lowered(_first_sentence(need("caption", caption)))
        return {
            "instruction": _pick(MULTIMODAL_REQUESTS, fields, salt).format(subject),
            "response": f"Here is an example. {medmax.IMAGE} {caption}",
        }
    raise BackendError(f"unknown task {task!r}")


class TemplateBackend:
    name = NAME
    model = MODEL
    concurrency = 1

    def generate(self, request: GenerationRequest) -> GenerationResult:
        pair = build_pair(request.task, request.fields, salt=request.seed)
        return GenerationResult(text=json.dumps(pair, ensure_ascii=False), model=MODEL)
