"""What a build counts as it streams rows, and the manifest.json it writes from the counts.

Counters only: their size depends on the number of tasks, sources and licences, not on rows.
"""

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import medmax_review
from medmax_review.exports import cards, selectors
from medmax_review.exports.files import FileDigest
from medmax_review.exports.models import DatasetVersion

EXCLUDED_LISTED = 1000  # rows listed one by one in the manifest; the rest only counted
_DIGITS = re.compile(r"\d+")


_KEYS = ("task", "source", "license", "split", "credential")


class _Combo(NamedTuple):
    """What one row is counted by (written as a plain tuple per row: cheaper)."""

    task: str
    source: str
    license_or_none: str
    split: str
    credential: str
    license: str
    citation: str
    template_ref: str
    template_version: int
    model: str


def _combos(counter: Counter) -> Iterator[tuple[_Combo, int]]:
    return ((_Combo._make(combo), rows) for combo, rows in counter.items())


@dataclass
class BuildStats:
    """The counts of one build, from which its manifest is written."""

    rows: int = 0
    # Rows per combination of what the manifest counts by (one update per row; the combinations
    # are few), in the order first met: the first citation of a source and licence is kept.
    combos: Counter = field(default_factory=Counter)
    excluded: int = 0
    excluded_reasons: Counter = field(default_factory=Counter)
    excluded_rows: list = field(default_factory=list)
    reviews: int = 0
    reviewed: int = 0
    multi_reviewed: int = 0
    unanimous: int = 0
    embedded: int = 0  # rows whose image bytes went into the data files

    def count(self, row: selectors.ExportRow, split: str) -> None:
        self.rows += 1
        self.combos[(row.task, row.source, row.license or "(none)", split, row.credential,
                     row.license, row.citation, row.template_ref, row.template_version,
                     row.model)] += 1
        review = row.review
        if review.human_verdicts:
            self.reviews += review.human_verdicts
            self.reviewed += 1
            if review.human_verdicts > 1:
                self.multi_reviewed += 1
                self.unanimous += review.unanimous

    @property
    def by(self) -> dict[str, Counter]:
        """Rows by task, source, licence, split and credential."""
        out = {key: Counter() for key in _KEYS}
        for combo, rows in self.combos.items():
            for key, value in zip(_KEYS, combo[:len(_KEYS)], strict=True):
                out[key][value] += rows
        return out

    @property
    def uses(self) -> Counter:
        """(source, licence) -> rows."""
        out = Counter()
        for combo, rows in _combos(self.combos):
            out[(combo.source, combo.license)] += rows
        return out

    @property
    def citations(self) -> dict:
        """(source, licence) -> the first citation met."""
        out = {}
        for combo, _ in _combos(self.combos):
            out.setdefault((combo.source, combo.license), combo.citation)
        return out

    @property
    def templates(self) -> set[str]:
        return {f"{c.template_ref} (v{c.template_version})" for c, _ in _combos(self.combos)}

    @property
    def models(self) -> set[str]:
        return {c.model for c, _ in _combos(self.combos) if c.model}

    def exclude(self, row: selectors.ExportRow, reasons: list[str]) -> None:
        self.excluded += 1
        for reason in reasons:
            self.excluded_reasons[_DIGITS.sub("N", reason)] += 1
        if len(self.excluded_rows) < EXCLUDED_LISTED:
            self.excluded_rows.append(
                {"candidate_id": row.candidate_id, "record_id": row.record_id, "reasons": reasons}
            )

    def source_uses(self) -> list[cards.SourceUse]:
        citations = self.citations
        return [
            cards.SourceUse(source, license_, rows, citations[(source, license_)])
            for (source, license_), rows in sorted(self.uses.items())
        ]

    def manifest(
        self, *, version: DatasetVersion, digests: dict[str, FileDigest], read: int,
        empty_splits: list[str], image_count: int,
    ) -> dict:
        """manifest.json: what was published, from which filters, counted how."""
        options = version.options
        return {
            "project": version.project.slug,
            "version": version.number,
            "created_at": version.created_at.isoformat(),
            "app_version": medmax_review.__version__,
            "format": version.format,
            "filters": options,
            "rows_read": read,
            "rows": self.rows,
            "counts": {key: dict(sorted(counter.items())) for key, counter in self.by.items()},
            # Splits that got no row: they have no file (an empty file breaks some loaders).
            "empty_splits": empty_splits,
            "agreement": {
                "reviews": self.reviews,
                "candidates_reviewed": self.reviewed,
                "candidates_with_several_reviews": self.multi_reviewed,
                "unanimous": self.unanimous,
                "unanimous_share": (
                    round(self.unanimous / self.multi_reviewed, 4) if self.multi_reviewed
                    else None
                ),
            },
            "templates": sorted(self.templates),
            "models": sorted(self.models),
            # count: image files beside the data; embedded: rows holding their image's bytes.
            "images": {"mode": options["images"], "count": image_count,
                       "embedded": self.embedded},
            "excluded": {
                "rows": self.excluded,
                "reasons": dict(sorted(self.excluded_reasons.items())),
                "listed": self.excluded_rows,
                "listed_limit": EXCLUDED_LISTED,
            },
            "files": {
                name: {"sha256": d.sha256, "size": d.size} for name, d in sorted(digests.items())
            },
        }
