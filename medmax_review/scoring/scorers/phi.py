"""Protected health information in the candidate's own text, each hit with a redaction."""

import re

from medmax_review.scoring.scorers.base import ScoreInput, ScoreResult, evidence

NAME = "phi"

_CAP = r"[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?"
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
# Common given names that are not also ordinary English or medical words.
FIRST_NAMES = (
    "John|Mary|James|Robert|Michael|William|David|Richard|Joseph|Thomas|Charles|Christopher|"
    "Daniel|Matthew|Anthony|Donald|Steven|Paul|Andrew|Joshua|Kenneth|Kevin|Brian|George|Edward|"
    "Jennifer|Linda|Elizabeth|Barbara|Susan|Jessica|Sarah|Karen|Nancy|Lisa|Margaret|Sandra|"
    "Ashley|Emily|Donna|Michelle|Carol|Amanda|Melissa|Deborah|Stephanie|Rebecca|Laura|Helen|"
    "Maria|Anna|Peter|Jose|Juan|Ahmed|Mohammed|Wei|Priya"
)

# (rule, pattern, redaction, explanation); order matters: the first rule to claim a span wins.
RULES = [
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "[EMAIL]", "e-mail address"),
    ("phone", re.compile(
        r"(?<!\w)(?:\+\d{1,3}[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}\b"),
     "[PHONE]", "phone number"),
    ("mrn", re.compile(
        r"\b(?:MRN|medical record (?:number|no\.?)|record (?:number|no\.?|#)|patient ID|"
        r"hospital (?:number|no\.?))\s*[:#]?\s*[A-Z]{0,3}\d{4,}\b", re.IGNORECASE),
     "[MRN]", "medical record number"),
    ("date", re.compile(
        r"\b(?:\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|\d{4}-\d{2}-\d{2}|"
        rf"{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|"
        rf"\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\.?,?\s+\d{{4}}|"
        rf"{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)\b)"),
     "[DATE]", "date"),
    ("address", re.compile(
        r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s){1,3}(?:Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|"
        r"Boulevard|Blvd\.?|Lane|Ln\.?|Drive|Dr\.?|Court|Ct\.?|Way|Place|Pl\.?)(?!\w)"),
     "[ADDRESS]", "street address"),
    ("age_over_89", re.compile(
        r"\b(?:(?:9\d|1[0-4]\d)[-\s](?:years?|yrs?|y/?o)(?:[-\s]old)?|"
        r"(?:aged?|age:)\s*(?:9\d|1[0-4]\d))\b", re.IGNORECASE),
     "[AGE 90+]", "age over 89"),
    ("name", re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+{_CAP}(?:\s+{_CAP})?"),
     "[NAME]", "person name after a title"),
    ("name", re.compile(rf"\b(?:[Pp]atient|[Pp]t\.?)\s+(?:named\s+)?({_CAP}\s+{_CAP})"),
     "[NAME]", "person name after 'patient'"),
    ("name", re.compile(rf"\b(?:{FIRST_NAMES})(?:\s+{_CAP})?\b"), "[NAME]", "given name"),
]

FIELDS = ("instruction", "context", "response")


def find_phi(text: str) -> list[tuple[str, int, int, str, str]]:
    """(rule, start, end, redaction, explanation) for each PHI hit, spans never overlapping."""
    hits = []
    taken: list[tuple[int, int]] = []
    for rule, pattern, redaction, explanation in RULES:
        for m in pattern.finditer(text):
            start, end = m.span(m.lastindex or 0)
            if any(start < e and s < end for s, e in taken):
                continue
            taken.append((start, end))
            hits.append((rule, start, end, redaction, explanation))
    return sorted(hits, key=lambda h: h[1])


def score_phi(item: ScoreInput) -> ScoreResult:
    found = []
    for field_name in FIELDS:
        text = getattr(item, field_name)
        for rule, start, end, redaction, explanation in find_phi(text):
            found.append(evidence(
                rule, f"{explanation}: \"{text[start:end]}\"", field=field_name,
                spans=[(start, end)], suggestion=redaction,
            ))
    return ScoreResult(NAME, 0.0 if found else 1.0, evidence=found)
