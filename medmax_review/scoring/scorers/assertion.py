"""Claims and their assertion status: medspaCy's ConText (NegEx lineage) on a blank spaCy pipeline.

Every content word becomes a one-token target, so ConText decides for each word whether a
negation ("no evidence of", "without", "ruled out") or an uncertainty cue ("possible",
"cannot exclude") covers it, with the cue's own scope and terminations ("but", "however").
No model is loaded: spacy.blank("en") tokenises, a rule sentencizer splits, ConText uses its
bundled rules plus ours. medspaCy pins spaCy < 3.8 (hence NumPy < 2) on Python < 3.12; where it
cannot be installed, a NegEx-style cue list with the same rules stands in, and the consistency
score says so.
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


# Cues the bundled ConText rules lack that generated radiology prose uses all the time:
# (literal, category, direction).
EXTRA_RULES = [(literal, "NEGATED_EXISTENCE", "BACKWARD") for literal in (
    "is absent", "are absent", "was excluded", "is excluded", "is ruled out", "was ruled out",
    "is not seen", "are not seen", "is not present", "are not present", "is not identified",
    "not visible", "is not evident", "does not appear", "do not appear", "doesn't appear",
    "don't appear", "not visualized", "is not visualized", "are not visualized", "not seen",
    "isn't seen", "is not visible", "are not visible", "not included", "is spared", "are spared",
    "was spared")]
EXTRA_RULES += [(literal, "NEGATED_EXISTENCE", "FORWARD") for literal in (
    "free of", "negative for", "absent", "there is no", "nor", "neither", "lack of",
    "devoid of")]
EXTRA_RULES += [(literal, "POSSIBLE_EXISTENCE", "BACKWARD") for literal in (
    "cannot be excluded", "can not be excluded", "cannot be ruled out", "not excluded",
    "is suspected", "is likely", "is possible", "is questionable")]
EXTRA_RULES += [(literal, "POSSIBLE_EXISTENCE", "FORWARD") for literal in (
    "may represent", "may be", "might be", "could be", "suspicious for", "suggestive of",
    "questionable", "likely", "probable", "possibly", "concerning for", "suspected")]
# "appears in the image" says where something is seen, not that it only seems to be there.
EXTRA_RULES += [(literal, "PSEUDO_POSSIBLE_EXISTENCE", "PSEUDO") for literal in (
    "appears in", "appear in", "appears on", "appear on", "appears at")]
# Narrow cues that deny one side only: "the right lung, not the left, ...", "spares the left".
# (literal, category, direction, max scope in tokens)
SCOPED_RULES = [(f"{cue} {side}", "NEGATED_EXISTENCE", "FORWARD", 1)
                for cue in ("not the", "rather than the", "spares the", "sparing the",
                            "spared the", "and not the")
                for side in ("left", "right")]
# Without medspaCy: the core NegEx cues it would have brought, with the same scope rules.
FALLBACK_RULES = EXTRA_RULES + [(literal, "NEGATED_EXISTENCE", "FORWARD") for literal in (
    "no", "not", "without", "absence of", "no evidence of", "no sign of", "no signs of",
    "denies", "never", "none", "rules out", "ruled out for", "isn't", "aren't", "doesn't",
    "don't", "cannot")] + [(literal, "POSSIBLE_EXISTENCE", "FORWARD") for literal in (
    "possible", "may", "might", "could", "probably", "perhaps", "question of", "rule out")]
_TERMINATE = frozenset("but however although though except whereas which while yet".split())

CONTEXT_METHOD = "medspaCy ConText (NegEx lineage) on a blank spaCy pipeline"
FALLBACK_METHOD = ("NegEx-style cue lists with clause scope (medspaCy is not installed, so "
                   "its ConText was not used)")


def _pipeline():
    with _lock:
        if "nlp" not in _state:
            import spacy

            nlp = spacy.blank("en")
            # A semicolon ends a claim, and with it the scope of a negation cue.
            nlp.add_pipe("sentencizer", config={"punct_chars": [".", "!", "?", ";"]})
            try:
                import medspacy  # noqa: F401  (registers the medspacy_context factory)
                from medspacy.context import ConTextRule
            except ImportError:  # not installable beside NumPy 2 on Python < 3.12
                _state["method"] = FALLBACK_METHOD
            else:
                context = nlp.add_pipe("medspacy_context", config={"rules": "default"})
                context.add([ConTextRule(literal, category, direction=direction)
                             for literal, category, direction in EXTRA_RULES])
                context.add([ConTextRule(literal, category, direction=direction,
                                                         max_scope=scope)
                             for literal, category, direction, scope in SCOPED_RULES])
                _state["method"] = CONTEXT_METHOD
            _state["nlp"] = nlp
        return _state["nlp"]


def assertion_method() -> str:
    """Which method decided negation and uncertainty in this process."""
    _pipeline()
    return _state["method"]


def _fallback_status(doc) -> tuple[dict[int, tuple[bool, bool]], list[tuple[int, int]]]:
    """{token index: (negated, uncertain)} and the cue spans, by the cue lists alone: a forward
    cue covers the rest of its clause, a backward cue the clause before it, as NegEx does."""
    lowered = [t.lower_ for t in doc]
    cues = []
    for literal, category, direction in sorted(FALLBACK_RULES, key=lambda r: -len(r[0])):
        words = literal.split()
        for i in range(len(lowered) - len(words) + 1):
            if lowered[i : i + len(words)] == words and not any(
                    a <= i < b or a < i + len(words) <= b for a, b, *_ in cues):
                cues.append((i, i + len(words), category, direction))
    status: dict[int, tuple[bool, bool]] = {}
    for sent in doc.sents:
        for a, b, category, direction in cues:
            if not (sent.start <= a < sent.end) or direction == "PSEUDO":
                continue
            step = range(b, sent.end) if direction == "FORWARD" else range(a - 1, sent.start - 1, -1)
            for i in step:
                if lowered[i] in _TERMINATE or doc[i].text in ",:" and direction == "BACKWARD":
                    break
                negated, uncertain = status.get(i, (False, False))
                status[i] = (negated or category == "NEGATED_EXISTENCE",
                             uncertain or category == "POSSIBLE_EXISTENCE")
    return status, [(a, b) for a, b, *_ in cues]


# A bare "yes"/"no" answer word, at the start or after a colon or comma ("It answers: no.").
_ANSWER_WORD = re.compile(r"(?:^|(?<=[:;,.!?]))\s*(?:yes|no|yeah|nope)\s*(?=[,.;:!]|$)",
                          re.IGNORECASE)


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
    denials: tuple[tuple[int, int], ...] = ()  # (start, end) of each negation cue itself


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
    # A bare "No," answers the question; it is no negation cue for the words around it.
    masked = _ANSWER_WORD.sub(lambda m: " " * len(m.group(0)), text)
    if _state["method"] == FALLBACK_METHOD:
        doc = nlp(masked)
        status, cues = _fallback_status(doc)
        denials = []
        targets = [(t.i, t.idx, t.idx + len(t.text), t.text, *status.get(t.i, (False, False)))
                   for t in doc if _is_target(t)]
    else:
        doc = nlp.make_doc(masked)
        for name, component in nlp.pipeline:
            if name != "medspacy_context":
                doc = component(doc)
        # Every content word is a one-token target: ConText then marks each one.
        doc.ents = [Span(doc, t.i, t.i + 1, label="TERM") for t in doc if _is_target(t)]
        doc = nlp.get_pipe("medspacy_context")(doc)
        modifiers = doc._.context_graph.modifiers
        cues = [m.modifier_span for m in modifiers]
        denials = [(doc[a:b].start_char, doc[a:b].end_char) for m in modifiers
                   if m.category == "NEGATED_EXISTENCE" for a, b in [m.modifier_span]]
        targets = [(e.start, e.start_char, e.end_char, e.text, bool(e._.is_negated),
                    bool(e._.is_uncertain)) for e in doc.ents]
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
    # A cue word ("free" as in "pain free", "absent") is not a claim of its own.
    terms = []
    for i, start, end, word, negated, uncertain in targets:
        if any(a <= i < b for a, b in cues):
            continue
        index = next((n for n, (s, e) in enumerate(claims) if s <= start < e), None)
        if index is None:
            continue  # inside a question: asserts nothing
        terms.append(Term(word, stem(word), start, end, index, negated, uncertain))
    return Parsed(tuple(terms), tuple(claims), tuple(questions), tuple(denials))


def negated_at(parsed: Parsed, start: int, end: int) -> bool:
    """Whether a content word within text[start:end] is under a negation cue, or is part of
    one ("not the left")."""
    return any(t.negated for t in parsed.terms if t.start < end and start < t.end) or any(
        a <= start and end <= b for a, b in parsed.denials)


def leading_yes_no(text: str) -> tuple[str, tuple[int, int]] | None:
    m = re.match(r"\s*(\w+)", text)
    if m and m.group(1).lower() in YES_NO:
        return YES_NO[m.group(1).lower()], m.span(1)
    return None


def question_as_statement(question: str) -> str:
    """'Is there a fracture of the humerus?' -> 'there a fracture of the humerus.' so ConText
    reads the question's own negations ('Is there no ...?') as it would in a statement."""
    return question.strip().rstrip("?").strip() + "."
