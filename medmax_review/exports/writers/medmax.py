"""MedMax JSONL: text, image_path, task, source, credential (no `tokens`: no tokenizer here)."""

from medmax_review.exports.writers.base import ExportLine, Writer


class MedmaxWriter(Writer):
    name = "medmax"
    label = "MedMax JSONL"

    def encode(self, row: ExportLine) -> bytes:
        # The text keeps its <image> placeholder even for a credentialed row, as MedMax
        # publishes them; every row has the image_path key, null when there is no image file.
        image_path = row.image_path if row.image_path is not None else row.image_path_absent
        return row.closed_json({"text": row.text, "image_path": image_path})
