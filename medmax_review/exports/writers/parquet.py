"""Hugging Face Parquet: data/<split>-00000-of-0000N.parquet, the MedMax columns plus an `image`
column holding the image bytes, typed in the schema's "huggingface" metadata as a `datasets`
Image feature ({"bytes", "path"}) so `load_dataset` decodes it.

Rows are buffered only up to one row group (a row count or a byte size, whichever comes first)
and a shard is closed once it passes SHARD_BYTES, so memory stays flat at any export size.
Shard names carry their count, known only at the end: shards are written under temporary names
and named when the split is committed.
"""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from medmax_review.exports.files import AtomicFile, FileDigest
from medmax_review.exports.writers.base import ExportLine, Writer, hf_split

DATA_DIR = "data"
ROW_GROUP_ROWS = 500
ROW_GROUP_BYTES = 32 << 20
SHARD_BYTES = 256 << 20  # the Hub's viewer and streaming work best with shards of a few 100 MB

_BASE = [
    ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())]), {"_type": "Image"}),
    ("text", pa.string(), None),
    ("task", pa.string(), None),
    ("source", pa.string(), None),
    ("credential", pa.string(), None),
]
# The provenance columns' types; scores vary in their names, so they travel as one JSON text.
_PROVENANCE = {
    "candidate_id": pa.int64(), "model": pa.string(), "template": pa.string(),
    "template_version": pa.int64(), "reviewers": pa.list_(pa.string()),
    "decision": pa.string(), "edited": pa.bool_(), "scores": pa.string(),
}


def _feature(arrow_type: pa.DataType) -> dict:
    """The `datasets` feature for an arrow type, in the spelling every `datasets` release reads
    ("Sequence" rather than 5.x's "List")."""
    if pa.types.is_list(arrow_type):
        return {"feature": _feature(arrow_type.value_type), "_type": "Sequence"}
    return {"dtype": {"int64": "int64", "bool": "bool", "string": "string"}[str(arrow_type)],
            "_type": "Value"}


def schema_for(*, provenance: bool) -> pa.Schema:
    fields, features = [], {}
    for name, arrow_type, feature in _BASE:
        fields.append(pa.field(name, arrow_type))
        features[name] = feature or _feature(arrow_type)
    if provenance:
        for name, arrow_type in _PROVENANCE.items():
            fields.append(pa.field(name, arrow_type))
            features[name] = _feature(arrow_type)
    metadata = {"huggingface": json.dumps({"info": {"features": features}})}
    return pa.schema(fields, metadata=metadata)


class _Sink:
    """What pyarrow writes into: a shard's AtomicFile, which pyarrow must not close itself."""

    closed = False

    def __init__(self, handle: AtomicFile):
        self.handle = handle

    def write(self, data) -> int:
        self.handle.write(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


class _Split:
    """One split's shards, and the rows buffered for its next row group."""

    def __init__(self, folder: Path, split: str, schema: pa.Schema):
        self.folder, self.split, self.schema = folder, split, schema
        self.shards: list[AtomicFile] = []
        self.writer: pq.ParquetWriter | None = None
        self.rows: list[dict] = []
        self.buffered = 0

    def add(self, row: dict, size: int) -> None:
        self.rows.append(row)
        self.buffered += size
        if len(self.rows) >= ROW_GROUP_ROWS or self.buffered >= ROW_GROUP_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        if self.writer is None:
            shard = AtomicFile(self.folder / DATA_DIR / f"{self.split}-{len(self.shards):05d}.parquet")
            self.shards.append(shard)
            self.writer = pq.ParquetWriter(_Sink(shard), self.schema)
        self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
        self.rows, self.buffered = [], 0
        if self.shards[-1].size >= SHARD_BYTES:
            self.close_shard()

    def close_shard(self) -> None:
        if self.writer is not None:
            self.writer.close()  # the footer; the file itself is published by commit()
            self.writer = None

    def commit(self) -> dict[str, FileDigest]:
        self.flush()
        self.close_shard()
        count, digests = len(self.shards), {}
        for i, shard in enumerate(self.shards):
            name = f"{DATA_DIR}/{hf_split(self.split)}-{i:05d}-of-{count:05d}.parquet"
            digests[name] = shard.commit(self.folder / name)
        return digests


class ParquetWriter(Writer):
    name = "parquet"
    label = "Hugging Face Parquet (images inside, dataset card)"
    hf_builder = "parquet"
    embeds_images = True

    def __init__(self, folder: Path):
        super().__init__(folder)
        self.splits: dict[str, _Split] = {}

    @classmethod
    def image_mode_refused(cls, mode: str) -> str:
        if mode == "archive":
            return "parquet files hold the image bytes themselves; choose copy or none"
        return ""

    @classmethod
    def top_names(cls, splits: list[str]) -> list[str]:
        return [DATA_DIR]

    def write(self, split: str, row: ExportLine) -> None:
        image, size = None, 0
        if row.image_path is not None:
            data = row.image_file.read_bytes() if row.image_file else None
            image = {"bytes": data, "path": row.image_path}
            size = len(data or b"")
        values = {"image": image, "text": row.text, "task": row.task, "source": row.source,
                  "credential": row.credential}
        if row.provenance is not None:
            values.update(row.provenance)
            values["scores"] = json.dumps(row.provenance["scores"], sort_keys=True)
        target = self.splits.get(split)
        if target is None:
            schema = schema_for(provenance=row.provenance is not None)
            target = self.splits[split] = _Split(self.folder, split, schema)
        target.add(values, size + len(row.text))

    def commit(self) -> dict[str, FileDigest]:
        digests = {}
        for split, target in sorted(self.splits.items()):
            names = target.commit()
            digests.update(names)
            self.published[split] = sorted(names)
        return digests

    def _handles(self) -> list[AtomicFile]:
        return [shard for target in self.splits.values() for shard in target.shards]

    def close(self) -> None:
        for handle in self._handles():
            handle.close()

    def abort(self) -> None:
        for handle in self._handles():
            handle.abort()
