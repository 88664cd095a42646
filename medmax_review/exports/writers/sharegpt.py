"""LLaMA-Factory's multimodal sharegpt format (its data/README.md, "Multimodal Image Dataset" with
the OpenAI-style tags of its `mllm_demo` entry): `messages` of {"role", "content"} with the
content a string holding one `<image>` token where each image goes, an `images` list of paths
(as many as there are tokens), and a dataset_info.json entry per split file describing them."""

import json

from medmax_review.exports.writers.base import ExportLine, Writer, hf_split

DATASET_INFO = "dataset_info.json"
ENTRY_PREFIX = "medmax_review"


class SharegptWriter(Writer):
    name = "sharegpt"
    label = "ShareGPT JSONL (LLaMA-Factory: messages + images, dataset_info.json)"

    @classmethod
    def top_names(cls, splits: list[str]) -> list[str]:
        return [*super().top_names(splits), DATASET_INFO]

    def encode(self, row: ExportLine) -> bytes:
        prompt, answer = row.turns()
        obj = {
            "messages": [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": answer},
            ],
            "images": [row.image_path] if row.image_path is not None else [],
        }
        return row.closed_json(obj)

    def extra_files(self) -> dict[str, str]:
        # One entry per split file: LLaMA-Factory loads a local file_name as one "train" split,
        # so each split is its own dataset name (medmax_review_train, _validation, _test).
        entries = {}
        for split, names in sorted(self.published.items()):
            (file_name,) = names
            entries[f"{ENTRY_PREFIX}_{hf_split(split)}"] = {
                "file_name": file_name,
                "formatting": "sharegpt",
                "columns": {"messages": "messages", "images": "images"},
                "tags": {
                    "role_tag": "role", "content_tag": "content",
                    "user_tag": "user", "assistant_tag": "assistant",
                },
            }
        if not entries:
            return {}
        return {DATASET_INFO: json.dumps(entries, ensure_ascii=False, indent=2) + "\n"}
