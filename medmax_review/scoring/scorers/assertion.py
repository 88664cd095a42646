"""Claims and their assertion status: medspaCy's ConText (NegEx lineage) on a blank spaCy pipeline.

Every content word becomes a one-token target, so ConText decides for each word whether a
negation ("no evidence of", "without", "ruled out") or an uncertainty cue ("possible",
"cannot exclude") covers it, with the cue's own scope and terminations ("but", "however").
No model is loaded: spacy.blank("en") tokenises, a rule sentencizer splits, ConText uses its
bundled rules.
"""

import re
import threading
from dataclasses import dataclass
from functools import lru_cache

from medmax_review.scoring.scorers.text import STOP_WORDS, stem

_lock = threading.Lock()
_state: dict = {}

# Clause boundaries inside a sentence: ", but" / "whereas"; each side is a claim.
CLAUSE = re.compile(r",?\s+\b(?:but|whereas|while|although)\b", re.IGNORECASE)
YES_NO = {"yes": "yes", "no": "no", "yeah": "yes", "nope": "no", "correct": "yes",
          "incorrect": "no", "true": "yes", "false": "no"}
NEGATION_WORDS = frozenset("no not without absent absence negative never neither nor none".split())


def _pipeline():
    with _lock:
        if "nlp" not in _state:
            import medspacy  # noqa: F401  (registers the medspacy_context factory)
            import spacy

            nlp = spacy.blank("en")
            # A semicolon ends a claim, and with it the scope of a negation cue.
            nlp.add_pipe("sentencizer", config={"punct_chars": [".", "!", "?", ";"]})
            context = nlp.add_pipe("medspacy_context", config={"rules": "default"})
            context.add(_extra_rules())
            _state["nlp"] = nlp
        return _state["nlp"]


def _extra_rules():
    """Cues the bundled rules lack that generated radiology prose uses all the time."""
    from medspacy.context import ConTextRule

    rules = [(literal, "NEGATED_EXISTENCE", "BACKWARD") for literal in (
        "is absent", "are absent", "was excluded", "is excluded", "is ruled out", "was ruled out",
        "is not seen", "are not seen", "is not present", "are not present", "is not identified",
        "not visible", "is not evident")]
    rules += [(literal, "NEGATED_EXISTENCE", "FORWARD") for literal in (
        "free of", "negative for", "absent", "there is no", "nor", "neither", "lack of",
        "devoid of")]
    rules += [(literal, "POSSIBLE_EXISTENCE", "BACKWARD") for literal in (
        "cannot be excluded", "can not be excluded", "cannot be ruled out", "not excluded",
        "is suspected", "is likely", "is possible", "is questionable")]
    rules += [(literal, "POSSIBLE_EXISTENCE", "FORWARD") for literal in (
        "may represent", "may be", "might be", "could be", "suspicious for", "suggestive of",
        "questionable", "likely", "probable", "possibly", "concerning for", "suspected")]
    return [ConTextRule(literal, category, direction=direction)
            for literal, category, direction in rules]


_LEADING_ANSWER = re.compile(r"\s*(?:yes|no|yeah|nope)\s*[,.;:!]", re.IGNORECASE)


@dataclass(frozen=True)
class Term:
    """One content word of a statement: its stem, offsets, sentence and assertion status."""

    text: str
    stem: str
    start: int
    end: int
    claim: int  # index of the sentence or clause it belongs to
    negated: bool
    uncertain: bool


@dataclass(frozen=True)
class Parsed:
    terms: tuple[Term, ...]
    claims: tuple[tuple[int, int], ...]  # (start, end) of each statement (questions left out)
    questions: tuple[tuple[int, int], ...]


def _is_target(token) -> bool:
    lowered = token.lower_
    return (token.is_alpha or any(c.isdigit() for c in token.text)) and lowered not in STOP_WORDS \
        and lowered not in NEGATION_WORDS and (len(lowered) > 1 or token.is_digit)


@lru_cache(maxsize=50_000)  # a source is parsed once for all the candidates written from it
def parse(text: str) -> Parsed:
    """Content words with ConText's negated/uncertain flags, grouped by claim."""
    if not text.strip():
        return Parsed((), (), ())
    from spacy.tokens import Span

    nlp = _pipeline()
    # A leading "No," answers the question; it is no negation cue for the clause after it.
    lead = _LEADING_ANSWER.match(text)
    doc = nlp.make_doc(" " * lead.end() + text[lead.end():] if lead else text)
    for name, component in nlp.pipeline:
        if name != "medspacy_context":
            doc = component(doc)
    doc.ents = [Span(doc, t.i, t.i + 1, label="TERM") for t in doc if _is_target(t)]
    doc = nlp.get_pipe("medspacy_context")(doc)
    claims, questions, bounds = [], [], []
    for sent in doc.sents:
        if sent.text.rstrip().endswith("?"):
            questions.append((sent.start_char, sent.end_char))
            continue
        cut = sent.start_char
        for m in CLAUSE.finditer(sent.text):
            bounds.append((cut, sent.start_char + m.start()))
            cut = sent.start_char + m.end()
        bounds.append((cut, sent.end_char))
    claims = [b for b in bounds if text[b[0]:b[1]].strip()]
    terms = []
    for ent in doc.ents:
        index = next((i for i, (s, e) in enumerate(claims) if s <= ent.start_char < e), None)
        if index is None:
            continue  # inside a question: asserts nothing
        terms.append(Term(ent.text, stem(ent.text), ent.start_char, ent.end_char, index,
                          bool(ent._.is_negated), bool(ent._.is_uncertain)))
    return Parsed(tuple(terms), tuple(claims), tuple(questions))


def negated_at(parsed: Parsed, start: int) -> bool:
    """Whether the content word starting at `start` is under a negation cue."""
    return any(t.negated for t in parsed.terms if t.start <= start < t.end)


def leading_yes_no(text: str) -> tuple[str, tuple[int, int]] | None:
    m = re.match(r"\s*(\w+)", text)
    if m and m.group(1).lower() in YES_NO:
        return YES_NO[m.group(1).lower()], m.span(1)
    return None


def question_as_statement(question: str) -> str:
    """'Is there a fracture of the humerus?' -> 'there a fracture of the humerus.' so ConText
    reads the question's own negations ('Is there no ...?') as it would in a statement."""
    return question.strip().rstrip("?").strip() + "."
