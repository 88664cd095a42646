"""Parquet as the Hugging Face `datasets` library writes it and the Hub serves it.

Read one record batch at a time with pyarrow, so memory stays flat whatever the file size.
An Image feature's value ({"bytes", "path"}) arrives as embedded bytes and is stored like any
image. A file whose only Image column has another name has that column read as the image.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from medmax_review.sources.readers.base import ROW, ParsedRow, plain

UNIT = ROW
BATCH_ROWS = 256
MAGIC = b"PAR1"


def is_parquet(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == MAGIC
    except OSError:
        return False


def image_columns(schema: pa.Schema) -> list[str]:
    """Columns the `datasets` features metadata declares as Image (or a list of Images)."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return []
    try:
        features = json.loads(raw).get("info", {}).get("features", {})
    except (ValueError, AttributeError):
        return []

    def is_image(feature) -> bool:
        if isinstance(feature, list):
            return bool(feature) and is_image(feature[0])
        if isinstance(feature, dict):
            return feature.get("_type") == "Image" or (
                feature.get("_type") == "Sequence" and is_image(feature.get("feature"))
            ) or (feature.get("_type") == "List" and is_image(feature.get("feature")))
        return False

    return [name for name, feature in features.items() if is_image(feature)]


def objects(path: Path, display: str) -> Iterator[tuple[ParsedRow, dict | None]]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        row = ParsedRow(file=display, line=0, unit=UNIT)
        row.error("", f"not a readable Parquet file ({exc})")
        yield row, None
        return
    images = image_columns(parquet.schema_arrow)
    rename = images[0] if len(images) == 1 and images[0] != "image" and \
        "image" not in parquet.schema_arrow.names else None
    number = 0
    with parquet:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            for data in batch.to_pylist():
                number += 1
                if rename:
                    data["image"] = data.pop(rename)
                yield ParsedRow(file=display, line=number, unit=UNIT), plain(data)


def count(path: Path) -> int:
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowException, OSError):
        return 0
