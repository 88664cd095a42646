"""The MedMax record format: tasks, the separator, the image placeholder, token estimates."""

import functools
import math
import re
from dataclasses import dataclass

from medmax_review.core.tokens import count_text_tokens, tokenizer_present

SEPARATOR = "<reserved08706>"
IMAGE = "<image>"
CONTEXT_TOKENS = 2048
IMAGE_TOKENS = 1026

VISUAL_CHAT = "visual_chat"
VQA = "vqa"
IMAGE_CAPTIONING = "image_captioning"
IMAGE_GENERATION = "image_generation"
REPORT_UNDERSTANDING = "report_understanding"
MULTIMODAL_GENERATION = "multimodal_generation"
TASKS = [
    VISUAL_CHAT,
    VQA,
    IMAGE_CAPTIONING,
    IMAGE_GENERATION,
    REPORT_UNDERSTANDING,
    MULTIMODAL_GENERATION,
]
TASK_CHOICES = [(t, t.replace("_", " ")) for t in TASKS]

# Spellings of the task names seen in the wild (MedMax's dataset card, papers, other tools),
# compared after folding case, spaces, underscores and hyphens.
TASK_ALIASES = {
    VISUAL_CHAT: ("visual chat", "chat", "visual conversation", "conversation"),
    VQA: ("vqa", "visual question answering", "question answering"),
    IMAGE_CAPTIONING: ("image captioning", "captioning", "image caption", "caption"),
    IMAGE_GENERATION: ("image generation", "text to image", "text-to-image"),
    REPORT_UNDERSTANDING: ("report understanding", "report generation", "report"),
    MULTIMODAL_GENERATION: ("multimodal generation", "medmax instruct", "medmax-instruct",
                            "interleaved generation"),
}
_FOLD = re.compile(r"[\s_\-]+")


def _fold(name: str) -> str:
    return _FOLD.sub(" ", name.strip().lower()).strip()


_TASK_BY_NAME = {
    _fold(alias): task for task, aliases in TASK_ALIASES.items() for alias in (task, *aliases)
}


@functools.lru_cache(maxsize=256)
def task_from_name(name: str) -> str | None:
    """The task a spelling names ("VQA", "Image Generation", "medmax-instruct"), else None.
    Cached: a dataset spells its few tasks the same way on every row."""
    return _TASK_BY_NAME.get(_fold(name))


def task_names_accepted() -> str:
    """The spellings listed when a name is not recognised."""
    return ", ".join(
        f"{task} ({'/'.join(a for a in aliases[:2])})" for task, aliases in TASK_ALIASES.items()
    )

# Where the <image> placeholder goes in `text`.
IMAGE_BEFORE_INSTRUCTION = "before_instruction"
IMAGE_IN_RESPONSE = "in_response"
IMAGE_NONE = "none"
IMAGE_POSITION_CHOICES = [
    (IMAGE_BEFORE_INSTRUCTION, "before the instruction (understanding)"),
    (IMAGE_IN_RESPONSE, "inside the response (generation)"),
    (IMAGE_NONE, "no image"),
]

# Chinese, Japanese and Korean characters: a byte-level BPE spends about two tokens on each,
# so a run of them must not count as one "word".
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
_WORDISH = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def estimate_text_tokens(text: str) -> int:
    """The fallback when no tokenizer is available (see core.tokens): ~1.3 tokens per word-ish
    piece and 2 per CJK character, never below chars/4."""
    cjk = len(_CJK.findall(text))
    pieces = len(_WORDISH.findall(_CJK.sub(" ", text)))
    return max(math.ceil(pieces * 1.3) + 2 * cjk, math.ceil(len(text) / 4))


def estimate_tokens(text: str) -> int:
    """Tokens of a MedMax text: the bundled tokenizer's count (the estimate without it), plus
    IMAGE_TOKENS per <image>."""
    images = text.count(IMAGE)
    plain = text.replace(IMAGE, "")
    counted = count_text_tokens(plain)
    return (estimate_text_tokens(plain) if counted is None else counted) + images * IMAGE_TOKENS


def build_text(*, instruction: str, context: str, response: str, image_position: str) -> str:
    """instruction (+ context), the separator, then the response; <image> where the task puts it."""
    prompt = instruction.strip()
    if context.strip():
        prompt = f"{prompt}\n{context.strip()}" if prompt else context.strip()
    answer = response.strip()
    if image_position == IMAGE_BEFORE_INSTRUCTION:
        prompt = IMAGE + prompt
    elif image_position == IMAGE_IN_RESPONSE and IMAGE not in answer:
        answer = answer + IMAGE
    return f"{prompt}{SEPARATOR}{answer}"


@dataclass(frozen=True)
class ParsedText:
    instruction: str
    response: str
    image_position: str


def _split_text(text: str) -> tuple[str, str, str, int] | str:
    """(instruction, response, image position, placeholders) of a MedMax `text`, or what is
    wrong with it: the one reading that parse_text and check_text (run on every exported row)
    share."""
    count = text.count(SEPARATOR)
    if count != 1:
        return f"text must contain exactly one {SEPARATOR} separator, found {count}"
    prompt, answer = text.split(SEPARATOR)
    images = text.count(IMAGE)
    if images > 1:
        return f"text has {images} {IMAGE} placeholders; MedMax allows at most one"
    if prompt.startswith(IMAGE):
        return prompt[len(IMAGE):], answer, IMAGE_BEFORE_INSTRUCTION, images
    if images and IMAGE in prompt:
        return f"{IMAGE} inside the instruction must stand at its start"
    return prompt, answer, IMAGE_IN_RESPONSE if images else IMAGE_NONE, images


def parse_text(text: str) -> ParsedText:
    """Split a MedMax `text` back into its parts; raises ValueError naming what is wrong."""
    parts = _split_text(text)
    if isinstance(parts, str):
        raise ValueError(parts)
    return ParsedText(*parts[:3])


def check_text(text: str, *, has_image: bool) -> list[str]:
    """Every MedMax rule the text breaks, as readable reasons (empty list: the row is valid)."""
    parts = _split_text(text)
    if isinstance(parts, str):
        return [parts]
    instruction, response, position, placeholders = parts
    problems = []
    if not instruction.strip():
        problems.append("empty instruction")
    # A generation record's response may be the image alone.
    if position != IMAGE_IN_RESPONSE and not response.strip():
        problems.append("empty response")
    if has_image and placeholders != 1:
        problems.append(f"record has an image but {placeholders} {IMAGE} placeholders")
    if not has_image and placeholders:
        problems.append(f"{IMAGE} placeholder but no image")
    if not _fits_by_length(text, placeholders):
        tokens = estimate_tokens(text)
        if tokens > CONTEXT_TOKENS:
            problems.append(f"about {tokens} tokens, over the {CONTEXT_TOKENS}-token context")
    return problems


def _fits_by_length(text: str, placeholders: int) -> bool:
    """True when the text fits the context whatever it says: the bundled byte-level BPE never
    makes more tokens than the text has UTF-8 bytes, so most texts need no tokenizer run."""
    budget = CONTEXT_TOKENS - placeholders * (IMAGE_TOKENS - len(IMAGE))
    # A character is at most 4 UTF-8 bytes: most texts are decided without encoding them.
    if 4 * len(text) > budget and len(text.encode()) > budget:
        return False
    return tokenizer_present()  # the estimate's own arithmetic is not bounded by bytes
