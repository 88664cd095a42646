"""Rows of plain records: id, image, source, license, the texts (caption, question and
answer, inline mention, report), language, modality, credential; other columns go to meta."""

from medmax_review.sources.readers.base import fill_record

NAME = "records"


def looks_like(data: dict) -> bool:
    return True


fill = fill_record
