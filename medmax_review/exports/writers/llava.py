"""LLaVA's training JSON (docs/Finetune_Custom_Data.md, llava/train/train.py): one JSON array per
split, each item `id`, `image` (only when the row has one: train.py tests `'image' in sample`)
and `conversations` alternating human / gpt from the human turn, `<image>\\n` opening the first
human turn. The array is written item by item, never held whole."""

from medmax_review.core.medmax import IMAGE
from medmax_review.exports.files import AtomicFile
from medmax_review.exports.writers.base import ExportLine, Writer

IMAGE_IN_RESPONSE = "image in the response: LLaVA's format takes images as input only"


class LlavaWriter(Writer):
    name = "llava"
    label = "LLaVA JSON (id, image, conversations)"
    suffix = ".json"
    separator = ",\n"

    def left_out(self, row: ExportLine) -> str:
        return IMAGE_IN_RESPONSE if row.image_in_response else ""

    def opened(self, handle: AtomicFile) -> None:
        handle.write("[\n")

    def encode(self, row: ExportLine) -> bytes:
        prompt, answer = row.turns()
        item = {"id": row.key}
        if row.image_path is not None:
            # train.py's preprocess_multimodal moves the token there too; written so already.
            item["image"] = row.image_path
            prompt = f"{IMAGE}\n{prompt.replace(IMAGE, '').strip()}"
        item["conversations"] = [
            {"from": "human", "value": prompt},
            {"from": "gpt", "value": answer},
        ]
        return row.closed_json(item, end=b"")

    def finishing(self, handle: AtomicFile) -> None:
        handle.write("\n]\n")
