"""Protected health information in the candidate's own text, each hit with a redaction.

Phone numbers come from libphonenumber (the phonenumbers package, any country's format); the
other identifiers from our own patterns, each keyed to the words that introduce it (an "MRN",
an "accession", a title before a name) so that ordinary measurements are never taken for IDs.
A name that is an eponym ("Parkinson's disease", "Dr. Parkinson", "circle of Willis") is a
disease or structure, not a person, and is not flagged.
"""

import re

import phonenumbers

from medmax_review.scoring.scorers.base import ScoreInput, ScoreResult, evidence
from medmax_review.scoring.scorers.eponyms import is_eponym_use

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

_ID = r"[:#]?\s*(?:no\.?|number|#)?\s*[:#]?\s*"
_ID_VALUE = r"(?:[A-Z]{1,4}-?)?\d(?:[\d-]{2,}\d)\b"  # "00123456", "RAD-2019-88412"
_AGE_WORDS = (r"(?:ninety|one hundred(?: and)?)(?:[- ](?:one|two|three|four|five|six|seven|eight|"
              r"nine))?")
_HOSPITAL_WORDS = r"(?:Hospital|Medical Cent(?:er|re)|Infirmary|Clinic|Health (?:System|Cent(?:er|re)))"

# (rule, pattern, redaction, explanation); order matters: the first rule to claim a span wins.
RULES = [
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), "[EMAIL]", "e-mail address"),
    ("url", re.compile(r"\b(?:https?://|www\.)[^\s<>\"')]+", re.IGNORECASE), "[URL]", "web address"),
    ("ip_address", re.compile(
        r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"),
     "[IP]", "IP address"),
    ("mrn", re.compile(
        r"\b(?:MRN|medical record(?: number| no\.?)?|record (?:number|no\.?|#)|patient ID|"
        r"hospital (?:number|no\.?)|unit (?:number|no\.?))" + _ID + _ID_VALUE,
        re.IGNORECASE),
     "[MRN]", "medical record number"),
    ("accession", re.compile(
        r"\b(?:accession|acc\.?|study ID|exam(?:ination)? (?:number|no\.?|#))" + _ID
        + _ID_VALUE, re.IGNORECASE),
     "[ACCESSION]", "accession number"),
    ("account", re.compile(
        r"\b(?:account|acct\.?|billing|claim|policy|member ID|insurance ID)" + _ID
        + _ID_VALUE, re.IGNORECASE),
     "[ACCOUNT]", "account number"),
    ("national_id", re.compile(
        r"\b(?:(?:SSN|social security(?: number| no\.?)?|NHS(?: number| no\.?)?|national ID|"
        r"NI number|health card|Medicare(?: number| no\.?)?)" + _ID + r"[A-Z]{0,2}[\d -]{8,14}\d|"
        r"\d{3}-\d{2}-\d{4}|"
        # A US Medicare Beneficiary Identifier: 11 characters, no S, L, O, I, B or Z letters.
        r"[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y\d]\d-?[AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y\d]\d-?"
        r"[AC-HJKMNP-RT-Y]{2}\d{2})\b", re.IGNORECASE),
     "[NATIONAL ID]", "national identity number"),
    ("date", re.compile(
        r"\b(?:\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})|\d{4}-\d{2}-\d{2}|"
        rf"{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|"
        rf"\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\.?,?\s+\d{{4}}|"
        rf"{_MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)\b)"),
     "[DATE]", "date"),
    ("phone", re.compile(
        r"\b(?:ext(?:ension)?\.?|x|pager|bleep|beeper|tel\.?|phone|call)\s*:?\s*#?\s*\d{3,5}\b|"
        r"(?<![\d-])\d{3}-\d{4}\b", re.IGNORECASE),
     "[PHONE]", "short phone or extension number"),
    ("address", re.compile(
        r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s){1,3}(?:Street|St\.?|Avenue|Ave\.?|Road|Rd\.?|"
        r"Boulevard|Blvd\.?|Lane|Ln\.?|Drive|Dr\.?|Court|Ct\.?|Way|Place|Pl\.?)(?!\w)"),
     "[ADDRESS]", "street address"),
    ("zip_code", re.compile(
        r"(?:\b(?:ZIP|zip code|postal code|postcode)\s*:?\s*|(?<=\b[A-Z]{2} ))\d{5}(?:-\d{4})?\b|"
        r"\b[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}\b"),
     "[ZIP]", "ZIP or postal code"),
    ("age_over_89", re.compile(
        r"\b(?:(?:9\d|1[0-4]\d)[-\s]?(?:years?|yrs?|y/?o|y\.o\.)(?:[-\s]old)?|"
        r"(?:aged?|age:)\s*(?:9\d|1[0-4]\d)|"
        rf"{_AGE_WORDS}[-\s](?:years?|yrs?)(?:[-\s]old)?|(?:aged?|age:)\s*{_AGE_WORDS})\b",
        re.IGNORECASE),
     "[AGE 90+]", "age over 89"),
    ("hospital", re.compile(
        rf"\b(?:St\.?\s|Saint\s)?(?:(?!The\b)[A-Z][\w'.&-]+\s){{1,4}}{_HOSPITAL_WORDS}\b|"
        rf"\b{_HOSPITAL_WORDS} of (?:[A-Z][\w'.-]+\s?){{1,4}}"),
     "[HOSPITAL]", "hospital or clinic name"),
    ("name", re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof|Professor|Sister|Nurse)\.?\s+{_CAP}(?:\s+{_CAP})?"),
     "[NAME]", "person name after a title"),
    ("name", re.compile(rf"\b(?:[Pp]atient|[Pp]t\.?)\s+(?:named\s+)?({_CAP}\s+{_CAP})"),
     "[NAME]", "person name after 'patient'"),
    ("name", re.compile(rf"\b(?:{FIRST_NAMES})(?:\s+{_CAP})?\b"), "[NAME]", "given name"),
]

FIELDS = ("instruction", "context", "response")
_PHONE_DIGITS = re.compile(r"\d[\d\s().+-]{6,}\d")


def _phone_numbers(text: str) -> list[tuple[int, int]]:
    """Full phone numbers in any country's format, found by libphonenumber."""
    if not _PHONE_DIGITS.search(text):
        return []  # the matcher is the costly part: most texts have no run of digits at all
    return [(m.start, m.end) for m in phonenumbers.PhoneNumberMatcher(
        text, "US", leniency=phonenumbers.Leniency.POSSIBLE)]


def find_phi(text: str) -> list[tuple[str, int, int, str, str]]:
    """(rule, start, end, redaction, explanation) for each PHI hit, spans never overlapping."""
    hits = []
    taken: list[tuple[int, int]] = []

    def claim(rule, start, end, redaction, explanation):
        if any(start < e and s < end for s, e in taken):
            return
        taken.append((start, end))
        hits.append((rule, start, end, redaction, explanation))

    for rule, pattern, redaction, explanation in RULES:
        if rule == "phone":  # full numbers first: an extension rule must not cut one in two
            for start, end in _phone_numbers(text):
                claim("phone", start, end, "[PHONE]", "phone number")
        for m in pattern.finditer(text):
            start, end = m.span(m.lastindex or 0)
            if rule in ("name", "hospital") and is_eponym_use(text, start, end):
                continue
            claim(rule, start, end, redaction, explanation)
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
