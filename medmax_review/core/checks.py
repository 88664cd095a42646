"""What each pre-score check looks for, and which clinician reject reasons answer to it.

One table for three readers: scoring names the reason of an auto-rejection with it, the project
settings offer its scores as auto-reject thresholds, and the statistics page measures each
check's precision and recall against the reasons clinicians gave.
"""

from dataclasses import dataclass

from medmax_review.core.bands import FLAGGED_BANDS, NA


@dataclass(frozen=True)
class Check:
    key: str
    label: str
    score: str
    # None: the score's band is the check (poor or fail flags); otherwise a kind of finding
    # in the score's evidence is.
    rule: str | None
    reasons: tuple[str, ...]  # reject reasons (review.models.REJECT_REASONS) it should predict


CHECKS = (
    Check("negation", "Consistency · negation", "consistency", "negation", ("hallucination",)),
    Check("laterality", "Consistency · laterality", "consistency", "laterality", ("laterality",)),
    Check("number", "Consistency · numbers", "consistency", "number", ("hallucination",)),
    Check("modality", "Consistency · modality", "consistency", "modality", ("modality",)),
    Check("anatomy", "Consistency · anatomy", "consistency", "anatomy", ("hallucination",)),
    Check("unsupported_claim", "Grounding · unsupported claim", "grounding", "unsupported_claim",
          ("hallucination",)),
    Check("grounding", "Grounding", "grounding", None, ("hallucination",)),
    Check("phi", "PHI", "phi", None, ("phi",)),
    Check("format", "Format", "format", None, ("formatting",)),
    Check("image", "Image quality", "image", None, ("poor_image",)),
    Check("near_duplicate", "Near-duplicate text", "near_duplicate", None, ("duplicate",)),
    Check("llm_judge", "LLM judge", "llm_judge", None, ("hallucination", "off_topic", "unsafe")),
)
# The scores a project can set an auto-reject threshold on, in the order they are shown.
SCORE_NAMES = tuple(dict.fromkeys(c.score for c in CHECKS))


def _rules(score: dict) -> set:
    evidence = score.get("evidence")
    return {e.get("rule") for e in evidence if isinstance(e, dict)} \
        if isinstance(evidence, list) else set()


def flags(check: Check, scores: dict) -> bool | None:
    """Whether the check flags a candidate with these scores; None when it checked nothing
    (the score is missing, malformed or n/a)."""
    score = (scores or {}).get(check.score)
    if not isinstance(score, dict) or score.get("band") in (None, NA):
        return None
    if check.rule is None:
        return score.get("band") in FLAGGED_BANDS
    return check.rule in _rules(score)


def reject_reason_for(name: str, score: dict) -> str:
    """The reject reason an auto-rejection on this score records: a specific one (laterality,
    modality) when the score holds that finding, else the one its checks share first."""
    rules = _rules(score or {})
    own = [c for c in CHECKS if c.score == name]
    for check in own:
        if check.rule in rules and check.reasons[0] != "hallucination":
            return check.reasons[0]
    return own[0].reasons[0] if own else "other"
