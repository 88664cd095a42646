"""What a build counts as it streams rows, and the manifest.json it writes from the counts.

Counters only: their size depends on the number of tasks, sources and licences, not on rows.
"""

import re
from collections import Counter
from dataclasses import dataclass, field

import medmax_review
from medmax_review.exports import cards, selectors
from medmax_review.exports.files import FileDigest
from medmax_review.exports.models import DatasetVersion

EXCLUDED_LISTED = 1000  # rows listed one by one in the manifest; the rest only counted
_DIGITS = re.compile(r"\d+")


@dataclass
class BuildStats:
    """The counts of one build, from which its manifest is written."""

    rows: int = 0
    by: dict[str, Counter] = field(
        default_factory=lambda: {k: Counter() for k in ("task", "source", "license", "split",
                                                          "credential")}
    )
    uses: Counter = field(default_factory=Counter)  # (source, licence) -> rows
    citations: dict = field(default_factory=dict)  # (source, licence) -> first citation met
    excluded: int = 0
    excluded_reasons: Counter = field(default_factory=Counter)
    excluded_rows: list = field(default_factory=list)
    templates: set = field(default_factory=set)
    models: set = field(default_factory=set)
    reviews: int = 0
    reviewed: int = 0
    multi_reviewed: int = 0
    unanimous: int = 0
    embedded: int = 0  # rows whose image bytes went into the data files

    def count(self, row: selectors.ExportRow, split: str) -> None:
        self.rows += 1
        for key, value in (("task", row.task), ("source", row.source),
                           ("license", row.license or "(none)"), ("split", split),
                           ("credential", row.credential)):
            self.by[key][value] += 1
        self.uses[(row.source, row.license)] += 1
        self.citations.setdefault((row.source, row.license), row.citation)
        self.templates.add(f"{row.template_ref} (v{row.template_version})")
        if row.model:
            self.models.add(row.model)
        review = row.review
        self.reviews += review.human_verdicts
        self.reviewed += review.human_verdicts > 0
        if review.human_verdicts > 1:
            self.multi_reviewed += 1
            self.unanimous += review.unanimous

    def exclude(self, row: selectors.ExportRow, reasons: list[str]) -> None:
        self.excluded += 1
        for reason in reasons:
            self.excluded_reasons[_DIGITS.sub("N", reason)] += 1
        if len(self.excluded_rows) < EXCLUDED_LISTED:
            self.excluded_rows.append(
                {"candidate_id": row.candidate_id, "record_id": row.record_id, "reasons": reasons}
            )

    def source_uses(self) -> list[cards.SourceUse]:
        return [
            cards.SourceUse(source, license_, rows, self.citations[(source, license_)])
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
