"""LLaVA, LLaVA-Med and PubMedVision conversations: `id`, `image` (a path or a one-element
list), `conversations` of {"from": "human" | "gpt", "value"}.

One source record per item; every human -> gpt pair becomes a visual_chat candidate, later
turns keeping the earlier ones as context. Where the `<image>` token stood (which turn, start
or end) is kept in the candidate's provenance. Items with more than one image are refused:
MedMax keeps at most one image per record.
"""

from medmax_review.core import medmax
from medmax_review.sources.readers.base import (
    ParsedRow,
    credential_value,
    external_id_for,
    image_value,
    json_safe,
    source_and_meta,
    text_value,
)

NAME = "llava"
HUMAN = {"human", "user"}
ASSISTANT = {"gpt", "assistant", "model", "bot"}
SYSTEM = {"system"}
LLAVA_KEYS = {"id", "image", "images", "conversations", "source", "license", "credential"}


def looks_like(data: dict) -> bool:
    turns = data.get("conversations")
    return isinstance(turns, list) and bool(turns) and isinstance(turns[0], dict) \
        and "from" in turns[0] and "value" in turns[0]


def _turns(row: ParsedRow, raw) -> list[tuple[str, str]]:
    """[(role, text)] with roles folded to human / gpt / system; errors name the turn."""
    if not isinstance(raw, list) or not raw:
        row.error("conversations", "missing field: conversations (a list of {from, value} turns)")
        return []
    turns = []
    for i, turn in enumerate(raw):
        if not isinstance(turn, dict):
            row.error("conversations", f"turn {i} is not an object with from and value")
            return []
        role = text_value(turn.get("from")).strip().lower()
        value = turn.get("value")
        if not isinstance(value, str):
            row.error("conversations", f"turn {i}: value must be text")
            return []
        if role in HUMAN:
            turns.append(("human", value))
        elif role in ASSISTANT:
            turns.append(("gpt", value))
        elif role in SYSTEM:
            turns.append(("system", value))
        else:
            row.error("conversations", f"turn {i}: unknown speaker {role!r} (expected human or gpt)")
            return []
    return turns


def _image_token(turns: list[tuple[str, str]]) -> dict | None:
    for i, (_, value) in enumerate(turns):
        if medmax.IMAGE in value:
            stripped = value.strip()
            at = "start" if stripped.startswith(medmax.IMAGE) else (
                "end" if stripped.endswith(medmax.IMAGE) else "inside")
            return {"turn": i, "at": at}
    return None


def _clean(value: str) -> str:
    return value.replace(medmax.IMAGE, "").strip()


def _context(history: list[tuple[str, str]]) -> str:
    names = {"human": "User", "gpt": "Assistant", "system": "System"}
    return "\n".join(f"{names[role]}: {_clean(value)}" for role, value in history)


def fill(row: ParsedRow, data: dict, *, stem: str) -> None:
    turns = _turns(row, data.get("conversations"))
    raw_image = data.get("image", data.get("images"))
    image_value(row, raw_image, "image")
    credential = credential_value(row, data.get("credential"))
    tokens = sum(value.count(medmax.IMAGE) for _, value in turns)
    if tokens > 1:
        row.error("conversations", f"has {tokens} {medmax.IMAGE} tokens; MedMax keeps at most one image")
    has_image = bool(row.image_ref) or row.image_data is not None
    meta = {k: json_safe(v) for k, v in data.items() if k not in LLAVA_KEYS and json_safe(v) is not None}
    row.record = {
        "source": source_and_meta(data.get("source"), stem=stem, meta=meta),
        "external_id": external_id_for(data.get("id"), {k: v for k, v in data.items() if k != "image"}),
        "license": text_value(data.get("license")).strip()[:100],
        "credential": credential,
        "meta": meta,
    }
    if row.errors or not turns:
        return
    token = _image_token(turns)
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for role, value in turns:
        if role == "system":
            history.append((role, value))
        elif role == "human":
            if pending is not None:
                row.error("conversations", "two human turns in a row (turns must alternate)")
                return
            pending = value
        else:
            if pending is None:
                row.error("conversations", "a gpt turn with no human turn before it")
                return
            if not _clean(pending) or not value.strip():
                row.error("conversations", f"turn pair {len(row.candidates)} has an empty side")
                return
            row.candidates.append({
                "task": medmax.VISUAL_CHAT,
                "instruction": _clean(pending),
                "context": _context(history),
                "response": value.strip(),
                "image_position": (medmax.IMAGE_BEFORE_INSTRUCTION if has_image
                                   else medmax.IMAGE_NONE),
                "sample_index": len(row.candidates),
                "provenance": {"conversation_turn": len(row.candidates),
                               **({"image_token": token} if token else {})},
            })
            history += [("human", pending), (role, value)]
            pending = None
    if not row.candidates:
        row.error("conversations", "no human turn followed by a gpt turn")
        return
    first = row.candidates[0]
    row.record.update(question=first["instruction"], answer=first["response"])
    if not has_image and credential != "yes" and token is not None:
        row.error("image", "missing field: image (the conversation has an <image> token)")
