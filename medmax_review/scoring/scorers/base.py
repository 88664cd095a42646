"""What every scorer takes and returns: plain data, so scorers stay pure and testable alone."""

from dataclasses import dataclass, field

# Scorers take all they share from this module, the bands included.
from medmax_review.core.bands import FAIL, FAIR, GOOD, NA, POOR, band_for  # noqa: F401


@dataclass(frozen=True)
class ScoreInput:
    """One candidate with the text of its source record."""

    instruction: str = ""
    context: str = ""
    response: str = ""
    task: str = ""
    image_position: str = "none"
    caption: str = ""
    inline_mention: str = ""
    question: str = ""
    answer: str = ""
    report: str = ""
    modality: str = ""
    has_image: bool = False

    def source_text(self) -> str:
        return "\n".join(
            t for t in (self.caption, self.inline_mention, self.question, self.answer, self.report)
            if t
        )


@dataclass
class ScoreResult:
    name: str
    value: float
    band: str = ""
    evidence: list[dict] = field(default_factory=list)

    def __post_init__(self):
        self.value = round(max(0.0, min(1.0, float(self.value))), 4)
        if not self.band:
            self.band = band_for(self.value)

    def as_dict(self) -> dict:
        return {"value": self.value, "band": self.band, "evidence": self.evidence}


def evidence(rule: str, text: str, *, field: str = "", spans=(), suggestion: str = "",
             source_words=()) -> dict:
    """One finding; `source_words` are the exact source words it was checked against."""
    item = {"rule": rule, "text": text, "field": field, "spans": [list(s) for s in spans]}
    if suggestion:
        item["suggestion"] = suggestion
    if source_words:
        item["source_words"] = list(source_words)
    return item
