"""TRL's vision SFT format: user/assistant `messages` whose content is a list of text and image
parts, and an `images` list with one path per image part."""

from medmax_review.core.medmax import IMAGE
from medmax_review.exports.writers.base import ExportLine, Writer


def content_parts(segment: str) -> list[dict]:
    """Text and image parts of one turn, the image where the <image> placeholder stood."""
    parts: list[dict] = []
    for i, piece in enumerate(segment.split(IMAGE)):
        if i:
            parts.append({"type": "image"})
        if piece.strip():
            parts.append({"type": "text", "text": piece.strip()})
    return parts


class ChatWriter(Writer):
    name = "chat"
    label = "Chat JSONL (TRL: messages + images)"

    def encode(self, row: ExportLine) -> bytes:
        # TRL's processors pair image parts with `images` one to one: a row without an image
        # file (credentialed, text-only) has neither.
        prompt, answer = row.turns()
        obj = {
            "messages": [
                {"role": "user", "content": content_parts(prompt)},
                {"role": "assistant", "content": content_parts(answer)},
            ],
            "images": [row.image_path] if row.image_path is not None else [],
        }
        return row.closed_json(obj)
