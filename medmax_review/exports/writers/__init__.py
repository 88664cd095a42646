"""The export formats, one module each behind the Writer interface of `base`."""

from medmax_review.exports.writers.base import SINGLE, ExportLine, Writer, hf_split
from medmax_review.exports.writers.chat import ChatWriter
from medmax_review.exports.writers.llava import LlavaWriter
from medmax_review.exports.writers.medmax import MedmaxWriter
from medmax_review.exports.writers.parquet import ParquetWriter
from medmax_review.exports.writers.sharegpt import SharegptWriter

__all__ = ["FORMATS", "SINGLE", "ExportLine", "Writer", "hf_split", "top_names"]

FORMATS: dict[str, type[Writer]] = {
    w.name: w for w in (MedmaxWriter, ChatWriter, SharegptWriter, LlavaWriter, ParquetWriter)
}


def top_names(splits: list[str]) -> set[str]:
    """Every name any format may write at the top of a version folder (leftover clean-up)."""
    return {name for writer in FORMATS.values() for name in writer.top_names(splits)}
