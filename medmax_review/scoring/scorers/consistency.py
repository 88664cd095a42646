"""Factual consistency with the source, claim by claim: negation, laterality, numbers, modality.

The response is split into claims (sentences and clauses); each content word carries ConText's
negated/uncertain status. A VQA yes/no answer turns its question into the source's assertion
("Is there a fracture?" + "No" = no fracture). Each finding quotes the words on both sides.
"""

import re

from medmax_review.core.medmax import VQA
from medmax_review.scoring.scorers.assertion import (
    CONTEXT_METHOD,
    YES_NO,
    Parsed,
    assertion_method,
    leading_yes_no,
    negated_at,
    parse,
    question_as_statement,
)
from medmax_review.scoring.scorers.base import NA, ScoreInput, ScoreResult, evidence
from medmax_review.scoring.scorers.modality import modalities_in
from medmax_review.scoring.scorers.quantities import quantities, same
from medmax_review.scoring.scorers.text import stem, words
from medmax_review.scoring.scorers.vocabulary import ANATOMY, FINDINGS, GENERIC

NAME = "consistency"
CONTRADICTION, UNSUPPORTED = 0.0, 0.4

# "right" as in "that is right" means correct, not a side.
SIDE = re.compile(r"\b(left|(?<!\bis )(?<!\bthat's )(?<!\ball )(?<!\bquite )right(?![ -](?:now|away)))\b|\b(bilateral(?:ly)?|both (?:sides|lungs|kidneys|hemispheres|"
                  r"breasts|lobes|eyes|knees|hips|ovaries)|left and right|right and left)\b",
                  re.IGNORECASE)
_SIDE_STEMS = {"left", "right", "bilater"}


def _quote(text: str, start: int, end: int, pad: int = 40) -> str:
    """The sentence-ish stretch around a span, for evidence a reviewer can check at a glance."""
    left = max(text.rfind(".", 0, start), text.rfind("\n", 0, start)) + 1
    right_dot = [i for i in (text.find(".", end), text.find("\n", end)) if i != -1]
    right = min(right_dot) if right_dot else len(text)
    left, right = max(left, start - pad), min(right, end + pad)
    return text[left:right].strip()


def _answer(item: ScoreInput) -> str | None:
    return YES_NO.get(item.answer.strip().lower().rstrip(".!"))


# --- numbers ---------------------------------------------------------------------------------

def _shown(q) -> str:
    return re.sub(r"(\d)([^\d\s.,-])", r"\1 \2", q.text)


def _check_numbers(item: ScoreInput, source: str) -> list[tuple[float, dict]]:
    truth = quantities(source)
    parsed = parse(item.response)
    found = []
    for q in quantities(item.response):
        if any(a <= q.start < b for a, b in parsed.questions) or any(same(q, t) for t in truth):
            continue
        kin = [t for t in truth if t.dimension == q.dimension and (q.dimension or not t.level)]
        if kin:
            found.append((CONTRADICTION, evidence(
                "number", f"\"{q.text}\" differs from the source "
                          f"({', '.join(sorted({_shown(t) for t in kin}))})",
                field="response", spans=[(q.start, q.end)],
                source_words=[t.text for t in kin])))
        else:
            found.append((UNSUPPORTED, evidence(
                "number", f"\"{q.text}\" does not appear in the source",
                field="response", spans=[(q.start, q.end)])))
    return found


# --- laterality ------------------------------------------------------------------------------

def _sides(text: str, parsed: Parsed | None = None) -> list[tuple[set[str], int, int]]:
    """([sides], start, end) per mention not under a negation ("not the left")."""
    found = []
    for m in SIDE.finditer(text):
        if parsed is not None and negated_at(parsed, m.start(), m.end()):
            continue
        sides = {m.group(1).lower()} if m.group(1) else {"left", "right"}
        found.append((sides, m.start(), m.end()))
    return found


def _check_laterality(item: ScoreInput, source: str) -> list[tuple[float, dict]]:
    answer_sides = set().union(*(s for s, _, _ in _sides(item.answer))) if item.task == VQA else set()
    # A VQA answer naming a side is the truth; otherwise any side the source names is allowed.
    truth = answer_sides or set().union(*(s for s, _, _ in _sides(source)))
    if not truth:
        return []
    parsed = parse(item.response)
    mentions = [(s, a, b) for s, a, b in _sides(item.response, parsed)
                if not any(qa <= a < qb for qa, qb in parsed.questions)]
    # Each side named is a claim of its own: "both the left and the right" when the source says
    # right claims a left that is not there.
    wrong = [(s - truth, a, b) for s, a, b in mentions if s - truth]
    if not wrong:
        return []
    said = sorted(set().union(*(s for s, _, _ in wrong)))
    return [(CONTRADICTION, evidence(
        "laterality", f"response says \"{', '.join(item.response[a:b] for _, a, b in wrong)}\" "
                      f"({', '.join(said)}) but the source says \"{', '.join(sorted(truth))}\"",
        field="response", spans=[(a, b) for _, a, b in wrong], source_words=sorted(truth)))]


# --- modality --------------------------------------------------------------------------------

def _asserted_modalities(text: str) -> dict[str, list[tuple[int, int]]]:
    """Modalities a text asserts: mentions inside a question or under a negation are left out."""
    parsed = parse(text)
    found = {}
    for name, spans in modalities_in(text).items():
        kept = [(s, e) for s, e in spans
                if not negated_at(parsed, s, e) and not any(a <= s < b for a, b in parsed.questions)]
        if kept:
            found[name] = kept
    return found


def _check_modality(item: ScoreInput) -> list[tuple[float, dict]]:
    truth = set(modalities_in(item.modality))
    truth |= set(_asserted_modalities("\n".join((item.caption, item.inline_mention, item.report))))
    # An answer naming a modality picks it ("MRI, CT or X-Ray?" -> "CT"); otherwise the
    # question's own is the truth, unless answered "No" ("Is this an MRI?" -> "No").
    answered = set(modalities_in(item.answer))
    truth |= answered or (set(modalities_in(item.question)) if _answer(item) != "no" else set())
    if not truth:
        return []
    # An instruction may repeat the source question ("Is this a X-Ray?" when the answer is No).
    allowed = {"instruction": truth | set(modalities_in(item.question)), "response": truth}
    found = []
    for field_name in ("instruction", "response"):
        text = getattr(item, field_name)
        mentions = modalities_in(text) if field_name == "instruction" else _asserted_modalities(text)
        for name, spans in mentions.items():
            if name not in allowed[field_name]:
                found.append((CONTRADICTION, evidence(
                    "modality", f"names {name} (\"{text[slice(*spans[0])]}\") but the source is "
                                f"{', '.join(sorted(truth))}",
                    field=field_name, spans=spans, source_words=sorted(truth))))
    return found


# --- anatomy ---------------------------------------------------------------------------------

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


# --- negation --------------------------------------------------------------------------------

_PREDICATE = re.compile(r"(?i)^(?:\w+(?:ed|en)|normal|abnormal|present|visible|intact|healthy|"
                        r"seen|located|in|on|at|of|larger|smaller|bigger)$")


def _presupposed(statement: str) -> set[str]:
    """Stems a yes/no question takes for granted: the subject of "Is the aortic knob
    widened?" (its words up to the predicate), which a "no" does not deny."""
    m = re.match(r"\s*(?:is|are|was|were)\s+(?:the|this|these|that)\s+"
                 r"(.+)", statement, re.IGNORECASE)
    if not m:
        return set()
    subject = []
    for w in m.group(1).rstrip(".").split():
        if _PREDICATE.match(w):
            break
        subject.append(stem(w))
    return set(subject[:-1] if len(subject) == len(m.group(1).split()) else subject)


def _claim_terms(parsed: Parsed, text: str) -> list:
    """Terms whose polarity is compared: certain, not generic, and not part of a modality name
    (a modality affirmed or denied is the modality check's to report)."""
    names = [span for spans in modalities_in(text).values() for span in spans]
    return [t for t in parsed.terms if not t.uncertain and t.stem not in GENERIC
            and not any(a <= t.start < b for a, b in names)]


def _source_assertions(item: ScoreInput) -> dict[str, dict[bool, str]]:
    """stem -> {negated?: quoted source words}; uncertain mentions assert nothing."""
    found: dict[str, dict[bool, str]] = {}

    def add(parsed: Parsed, text: str, *, flip=False, skip=frozenset(), quoted=""):
        for t in _claim_terms(parsed, text):
            if t.stem in skip:
                continue
            found.setdefault(t.stem, {})[t.negated != flip] = quoted or _quote(text, t.start, t.end)

    for text in (item.caption, item.inline_mention, item.report):
        add(parse(text), text)
    answer = _answer(item)
    if item.question and item.task == VQA and (answer or not item.question.strip()
                                               .lower().startswith(("is ", "are ", "does ", "do "))):
        statement = question_as_statement(item.question)
        quoted = f"{item.question.strip()} {item.answer.strip()}"
        parsed = parse(statement)
        skip = set()
        if answer == "no":
            # A "no" denies the finding asked about, not the organ or side it is asked of,
            # unless the organ is all it asks about ("Does the picture contain liver?").
            skip = _presupposed(statement) | _SIDE_STEMS
            asked = [t.stem for t in _claim_terms(parsed, statement)]
            if any(a in FINDINGS for a in asked):
                # "Is there a pleural effusion?" "No" denies the effusion, not the pleura.
                skip |= set(asked) - FINDINGS
            elif any(a not in skip | ANATOMY for a in asked):
                skip |= ANATOMY
        # Quoted as the question and its answer, not as the rewritten statement.
        add(parsed, statement, flip=answer == "no", skip=skip, quoted=quoted)
    return found


def _check_negation(item: ScoreInput) -> list[tuple[float, dict]]:
    found = []
    truth = _answer(item) if item.task == VQA else None
    said = leading_yes_no(item.response)
    if truth and said and said[0] != truth:
        found.append((CONTRADICTION, evidence(
            "negation", f"answers \"{item.response[slice(*said[1])]}\" but the source answer to "
                        f"\"{item.question.strip()}\" is \"{item.answer.strip()}\"",
            field="response", spans=[said[1]], source_words=[item.answer.strip()])))
    source = _source_assertions(item)
    by_stem: dict[str, list] = {}
    for t in _claim_terms(parse(item.response), item.response):
        if t.stem in source:
            by_stem.setdefault(t.stem, []).append(t)
    for term_stem, occurrences in by_stem.items():
        claims = {t.negated for t in occurrences}
        sides = source[term_stem]
        if len(claims) != 1 or len(sides) != 1:
            continue  # both polarities on one side: nothing clear to contradict
        (negated,) = claims
        (source_negated, quoted) = next(iter(sides.items()))
        if negated == source_negated:
            continue
        first = occurrences[0]
        claim = "absent" if negated else "present"
        found.append((CONTRADICTION, evidence(
            "negation", f"response says \"{first.text}\" is {claim} "
                        f"(\"{_quote(item.response, first.start, first.end)}\"); the source says "
                        f"the opposite (\"{quoted}\")",
            field="response", spans=[(t.start, t.end) for t in occurrences],
            source_words=[quoted])))
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
    found = [e for _, e in findings]
    if assertion_method() != CONTEXT_METHOD:
        found.append(evidence("method", f"method: negation and uncertainty by {assertion_method()}"))
    return ScoreResult(NAME, value, evidence=found)
