"""The writer interface: the build engine streams checked rows in, one split at a time or mixed,
and each format turns them into its files.

A split's file is opened on its first row, so a split without rows gets no file. Output must be
byte-stable: keys in a fixed order, compact separators, UTF-8 kept as is, "\\n" line ends, and
nothing that depends on when or where the export ran.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import orjson

from medmax_review.core.medmax import IMAGE, SEPARATOR
from medmax_review.exports.files import AtomicFile, FileDigest

SINGLE = "data"  # the split name of an export without a split: one data.<ext> file
HF_SINGLE = "train"  # what Hugging Face calls that one split


def hf_split(split: str) -> str:
    return HF_SINGLE if split == SINGLE else split


@dataclass(slots=True)
class ExportLine:
    """What a writer needs for one row; built by the engine from the database and checked first."""

    key: str  # unique within the export (the candidate id)
    text: str  # the MedMax `text`: prompt, separator, response, <image> in place
    # "images/<sha256>.<ext>", or None when the row has no image file to give (no image, or a
    # credentialed row whose image stays with its source).
    image_path: str | None
    task: str  # the canonical name or the imported spelling, as the options ask
    source: str
    credential: str  # "yes" / "no"
    provenance: dict | None = None  # fixed-order extra columns, only with the provenance flag
    image_file: Path | None = None  # the checked store file, for formats that embed the bytes
    # What MedMax's `image_path` says when there is no image: None, or the "" a published
    # MedMax row had (kept by the import, written back with task_names "source").
    image_path_absent: str | None = None

    @property
    def image_in_response(self) -> bool:
        return IMAGE in self.text.split(SEPARATOR, 1)[1]

    def turns(self) -> tuple[str, str]:
        """(prompt, response) with the <image> placeholder only where an image is given: a
        trainer counts placeholders against images, so a row without one has none."""
        prompt, answer = self.text.split(SEPARATOR, 1)
        if self.image_path is None:
            prompt, answer = prompt.replace(IMAGE, ""), answer.replace(IMAGE, "")
        return prompt.strip(), answer.strip()

    def closed_json(self, obj: dict, *, end: bytes = b"\n") -> bytes:
        """`obj` (a dict of the writer's own, closed here) followed by the columns every format
        closes a row with, as compact JSON followed by `end` (a JSONL line)."""
        obj["task"], obj["source"], obj["credential"] = self.task, self.source, self.credential
        if self.provenance is None:
            return orjson.dumps(obj) + end
        obj.update(self.provenance)
        return json_compact(obj, floats=True) + end


def json_compact(obj, *, floats: bool = False) -> bytes:
    """Compact JSON, UTF-8 kept as is: the bytes of json.dumps(obj, ensure_ascii=False,
    separators=(",", ":")).

    orjson writes exactly those bytes for strings, integers, booleans, None, lists and dicts, at a
    fraction of the cost; floats it spells its own way (1e-05 as 1e-5), so an object that may hold
    one (`floats`: the provenance columns' scores) goes through json.
    """
    if floats:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return orjson.dumps(obj)



class Writer:
    """One export format. The engine calls write() for each published row, then commit() (or
    close() when another worker took the version over, abort() when the build failed)."""

    name: ClassVar[str]
    label: ClassVar[str]  # for the export form
    suffix: ClassVar[str] = ".jsonl"
    # Hugging Face `datasets` reads the files with this builder ("json", "parquet").
    hf_builder: ClassVar[str] = "json"
    # The images are inside the data files: the engine hands over the checked store file
    # instead of copying it next to them.
    embeds_images: ClassVar[bool] = False
    separator: ClassVar[str] = ""  # written between two rows of a file (JSONL rows end in "\n")

    def __init__(self, folder: Path):
        self.folder = folder
        self.files: dict[str, AtomicFile] = {}
        self.published: dict[str, list[str]] = {}  # split -> its files, once committed

    @classmethod
    def image_mode_refused(cls, mode: str) -> str:
        """Why this format cannot take that `images` option ("" when it can)."""
        return ""

    @classmethod
    def top_names(cls, splits: list[str]) -> list[str]:
        """Every name this format may write at the top of the version folder."""
        return [f"{s}{cls.suffix}" for s in splits]

    def left_out(self, row: ExportLine) -> str:
        """Why this format cannot hold the row ("" when it can); counted in the manifest."""
        return ""

    def encode(self, row: ExportLine) -> bytes:
        raise NotImplementedError

    def write(self, split: str, row: ExportLine) -> None:
        handle = self.files.get(split)
        if handle is None:
            handle = self.files[split] = AtomicFile(self.folder / f"{split}{self.suffix}")
            self.opened(handle)
        elif self.separator:
            handle.write(self.separator)
        handle.write(self.encode(row))

    def opened(self, handle: AtomicFile) -> None:
        """Called once per file before its first row (a JSON array writes its "[")."""

    def finishing(self, handle: AtomicFile) -> None:
        """Called once per file after its last row."""

    def commit(self) -> dict[str, FileDigest]:
        """Publish every file that has rows; returns {name relative to the folder: digest}."""
        digests = {}
        for split, handle in sorted(self.files.items()):
            self.finishing(handle)
            digest = handle.commit()
            name = str(handle.final.relative_to(self.folder))
            digests[name] = digest
            self.published[split] = [name]
        return digests

    def close(self) -> None:
        for handle in self.files.values():
            handle.close()

    def abort(self) -> None:
        for handle in self.files.values():
            handle.abort()

    def extra_files(self) -> dict[str, str]:
        """Files the format's trainer needs besides the data (LLaMA-Factory's dataset_info.json),
        {name: text}, written after commit()."""
        return {}
