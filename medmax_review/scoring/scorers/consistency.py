"""Factual consistency with the source: numbers, laterality, anatomy, modality, negation."""

import re

from medmax_review.core.medmax import VQA
from medmax_review.scoring.scorers.base import NA, ScoreInput, ScoreResult, evidence
from medmax_review.scoring.scorers.text import STOP_WORDS, stem, words

NAME = "consistency"
CONTRADICTION, UNSUPPORTED = 0.0, 0.4

NUMBER = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s*(mm|cm|ml|mL|cc|kg|mg|g|%|percent|hu|HU|years?|yrs?|months?|"
    r"weeks?|days?|hours?|bpm|mmhg|mmHg)?(?![\w.]\d)(?:st|nd|rd|th)?\b"
)
_UNIT_ALIASES = {"percent": "%", "year": "years", "yr": "years", "yrs": "years", "cc": "ml",
                 "month": "months", "week": "weeks", "day": "days", "hour": "hours"}

SIDE = re.compile(r"\b(left|right)\b", re.IGNORECASE)
_OTHER_SIDE = {"left": "right", "right": "left"}

# Modality name -> pattern; upper-case abbreviations match case-sensitively so "us" or "ct" in
# ordinary words never count.
MODALITIES = {
    "CT": re.compile(r"\bCT\b|\bcomputed tomograph\w*|\bCAT scan", re.IGNORECASE),
    "MRI": re.compile(r"\bMRI?\b|\b(?i:magnetic resonance|T[12][- ]weighted|FLAIR)\b"),
    "X-ray": re.compile(r"\bx-?rays?\b|\bradiograph\w*|\bCXR\b|\bplain films?\b", re.IGNORECASE),
    "ultrasound": re.compile(r"\bUS\b|\b(?i:ultrasound\w*|ultrasonograph\w*|sonograph\w*)"),
    "PET": re.compile(r"\bPET\b|\b(?i:positron emission)"),
    "H&E": re.compile(r"\bH\s?&\s?E\b|\bhaema?toxylin and eosin\b", re.IGNORECASE),
    "IHC": re.compile(r"\bIHC\b|\b(?i:immunohistochem\w*)"),
    "fundus": re.compile(r"\bfundus\b|\bfundoscop\w*|\bfundus photograph\w*", re.IGNORECASE),
    "mammography": re.compile(r"\bmammogra\w*", re.IGNORECASE),
    "endoscopy": re.compile(r"\b(?:endoscop|colonoscop|gastroscop)\w*", re.IGNORECASE),
    "OCT": re.compile(r"\bOCT\b|\b(?i:optical coherence tomograph\w*)"),
}

ANATOMY = frozenset(stem(w) for w in """lung liver kidney heart brain spleen pancreas bladder
    stomach colon bowel duodenum esophagus trachea aorta spine vertebra rib femur humerus tibia
    skull pelvis gallbladder uterus ovary prostate thyroid breast retina cerebellum ventricle
    diaphragm appendix rectum adrenal testis knee shoulder hip elbow wrist ankle sinus mandible
    orbit""".split())

NEGATION_BEFORE = frozenset("no not without absence absent negative free never neither nor".split())
NEGATION_AFTER = frozenset("absent not excluded".split())
YES_NO = {"yes": "yes", "no": "no", "yeah": "yes", "nope": "no"}


def _number_unit(m: re.Match) -> tuple[float, str]:
    unit = (m.group(2) or "").lower()
    return float(m.group(1)), _UNIT_ALIASES.get(unit, unit)


def _check_numbers(item: ScoreInput, source: str) -> list[tuple[float, dict]]:
    source_pairs = {_number_unit(m) for m in NUMBER.finditer(source)}
    source_values = {v for v, _ in source_pairs}
    found = []
    for m in NUMBER.finditer(item.response):
        value, unit = _number_unit(m)
        if (value, unit) in source_pairs or (not unit and value in source_values):
            continue
        same_unit = sorted(f"{v:g} {u}" for v, u in source_pairs if u == unit and unit)
        if same_unit:
            found.append((CONTRADICTION, evidence(
                "number", f"\"{m.group(0).strip()}\" differs from the source ({', '.join(same_unit)})",
                field="response", spans=[m.span()])))
        elif value not in source_values:
            found.append((UNSUPPORTED, evidence(
                "number", f"\"{m.group(0).strip()}\" does not appear in the source",
                field="response", spans=[m.span()])))
    return found


def _sides(text: str) -> set[str]:
    return {m.group(1).lower() for m in SIDE.finditer(text)}


def _check_laterality(item: ScoreInput, source: str) -> list[tuple[float, dict]]:
    answer_sides = _sides(item.answer) if item.task == VQA else set()
    # A VQA answer naming a side is the truth; otherwise any side the source names is allowed.
    truth = answer_sides or _sides(source)
    response_sides = _sides(item.response)
    if not truth or not response_sides or (answer_sides and answer_sides & response_sides):
        return []
    wrong = response_sides - truth
    if not wrong:
        return []
    spans = [m.span() for m in SIDE.finditer(item.response) if m.group(1).lower() in wrong]
    return [(CONTRADICTION, evidence(
        "laterality", f"response says \"{', '.join(sorted(wrong))}\" but the source says "
                      f"\"{', '.join(sorted(truth))}\"",
        field="response", spans=spans))]


def modalities_in(text: str) -> dict[str, list[tuple[int, int]]]:
    found: dict[str, list[tuple[int, int]]] = {}
    for name, pattern in MODALITIES.items():
        spans = [m.span() for m in pattern.finditer(text)]
        if spans:
            found[name] = spans
    return found


def _check_modality(item: ScoreInput) -> list[tuple[float, dict]]:
    truth = set(modalities_in(item.modality))
    truth |= set(modalities_in("\n".join((item.caption, item.inline_mention, item.report))))
    # "Is this an MRI?" answered "No" must not make MRI the truth.
    if YES_NO.get(item.answer.strip().lower().rstrip(".")) != "no":
        truth |= set(modalities_in(f"{item.question}\n{item.answer}"))
    if not truth:
        return []
    # An instruction may repeat the source question ("Is this a X-Ray?" when the answer is No).
    allowed = {"instruction": truth | set(modalities_in(item.question)), "response": truth}
    found = []
    questions = [m.span() for m in re.finditer(r"[^.!?\n]*\?", item.response)]
    for field_name in ("instruction", "response"):
        for name, spans in modalities_in(getattr(item, field_name)).items():
            if field_name == "response":
                # A response that repeats a question ("Is this a X-Ray? No.") asserts nothing.
                spans = [(s, e) for s, e in spans if not any(a <= s < b for a, b in questions)]
            if spans and name not in allowed[field_name]:
                found.append((CONTRADICTION, evidence(
                    "modality", f"names {name} but the source is {', '.join(sorted(truth))}",
                    field=field_name, spans=spans)))
    return found


def _check_anatomy(item: ScoreInput, source: str) -> list[tuple[float, dict]]:
    source_organs = {stem(w) for w, _, _ in words(source)} & ANATOMY
    if not source_organs:
        return []
    extra = [(w, s, e) for w, s, e in words(item.response)
             if stem(w) in ANATOMY and stem(w) not in source_organs]
    if not extra:
        return []
    names = ", ".join(sorted({w.lower() for w, _, _ in extra}))
    return [(UNSUPPORTED, evidence(
        "anatomy", f"names {names}, which the source never mentions "
                   f"(source mentions: {', '.join(sorted(source_organs))})",
        field="response", spans=[(s, e) for _, s, e in extra]))]


def _polarity(text: str) -> dict[str, list[tuple[bool, int, int]]]:
    """stem -> [(negated, start, end)] for content words of statements (questions skipped)."""
    result: dict[str, list[tuple[bool, int, int]]] = {}
    for sentence in re.finditer(r"[^.!?;\n]+[.!?;\n]?", text):
        if sentence.group(0).rstrip().endswith("?"):
            continue
        tokens = [(w, s + sentence.start(), e + sentence.start())
                  for w, s, e in words(sentence.group(0))]
        lowered = [w.lower() for w, _, _ in tokens]
        for i, (w, s, e) in enumerate(tokens):
            if lowered[i] in STOP_WORDS or len(w) < 4 or lowered[i] in NEGATION_BEFORE:
                continue
            before = set(lowered[max(0, i - 3) : i])
            after = set(lowered[i + 1 : i + 4])
            negated = bool(before & NEGATION_BEFORE or after & NEGATION_AFTER)
            result.setdefault(stem(w), []).append((negated, s, e))
    return result


def _check_negation(item: ScoreInput) -> list[tuple[float, dict]]:
    found = []
    if item.task == VQA:
        truth = YES_NO.get(item.answer.strip().lower().rstrip("."))
        first = re.match(r"\s*(\w+)", item.response)
        said = YES_NO.get(first.group(1).lower()) if first else None
        if truth and said and said != truth:
            found.append((CONTRADICTION, evidence(
                "negation", f"answers \"{first.group(1)}\" but the source answer is \"{item.answer}\"",
                field="response", spans=[first.span(1)])))
    source = _polarity("\n".join((item.caption, item.inline_mention, item.report)))
    for term, occurrences in _polarity(item.response).items():
        if term not in source:
            continue
        source_negated = {neg for neg, _, _ in source[term]}
        response_negated = {neg for neg, _, _ in occurrences}
        if len(source_negated) == 1 and len(response_negated) == 1 and source_negated != response_negated:
            word = item.response[occurrences[0][1] : occurrences[0][2]]
            claim = "absent" if True in response_negated else "present"
            found.append((CONTRADICTION, evidence(
                "negation", f"response says \"{word}\" is {claim}; the source says the opposite",
                field="response", spans=[(s, e) for _, s, e in occurrences])))
    return found


def score_consistency(item: ScoreInput) -> ScoreResult:
    source = "\n".join(t for t in (item.source_text(), item.context) if t)
    if not source.strip() and not item.modality.strip():
        return ScoreResult(NAME, 1.0, band=NA, evidence=[evidence(
            "nothing_to_check", "the record has no source text or modality to check against",
            field="response")])
    findings = (
        _check_numbers(item, source) + _check_laterality(item, source) + _check_modality(item)
        + _check_anatomy(item, source) + _check_negation(item)
    )
    value = min((v for v, _ in findings), default=1.0)
    return ScoreResult(NAME, value, evidence=[e for _, e in findings])
