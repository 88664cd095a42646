"""MedMax format rules plus the faults a formatter misses: empty, too short, repetitive, refusals."""

import re
from collections import Counter

from medmax_review.core.medmax import (
    IMAGE,
    IMAGE_GENERATION,
    IMAGE_NONE,
    VQA,
    build_text,
    check_text,
)
from medmax_review.scoring.scorers.base import ScoreInput, ScoreResult, evidence
from medmax_review.scoring.scorers.text import words

NAME = "format"

REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|as an ai|as a language model|i cannot|i can'?t (?:help|provide|"
    r"assist|answer|determine)|i am unable to|i'?m unable to|i do not have access|"
    r"i don'?t have access)\b",
    re.IGNORECASE,
)
# Fewest words a response should have; a VQA answer may be a single word.
MIN_WORDS = {VQA: 1}
DEFAULT_MIN_WORDS = 3


def _repeated_ngrams(text: str, n: int = 3) -> tuple[float, str, int]:
    """Share of n-grams that repeat an earlier one, the most repeated n-gram and its count."""
    tokens = [w.lower() for w, _, _ in words(text)]
    grams = [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if len(grams) < 6:
        return 0.0, "", 0
    counts = Counter(grams)
    top, top_count = counts.most_common(1)[0]
    return 1 - len(counts) / len(grams), top, top_count


def score_format(item: ScoreInput) -> ScoreResult:
    found = []
    worst = 1.0
    text = build_text(
        instruction=item.instruction, context=item.context, response=item.response,
        image_position=item.image_position,
    )
    has_image = item.image_position != IMAGE_NONE
    for problem in check_text(text, has_image=has_image):
        found.append(evidence("medmax", problem, field="text"))
        worst = 0.0
    response = item.response.replace(IMAGE, "")
    n_words = len(words(response))
    if not response.strip():
        if item.task != IMAGE_GENERATION:
            found.append(evidence("empty", "the response is empty", field="response"))
            worst = 0.0
    elif n_words < MIN_WORDS.get(item.task, DEFAULT_MIN_WORDS):
        found.append(evidence("too_short", f"the response has only {n_words} word(s)",
                              field="response", spans=[(0, len(item.response))]))
        worst = min(worst, 0.5)
    for field_name in ("instruction", "response"):
        value = getattr(item, field_name)
        for m in REFUSAL.finditer(value):
            found.append(evidence("refusal", f"refusal phrase \"{m.group(0)}\"",
                                  field=field_name, spans=[m.span()]))
            worst = 0.0
    share, top, count = _repeated_ngrams(response)
    if share > 0.3 or count >= 4:
        spans = [m.span() for m in re.finditer(re.escape(top), item.response, re.IGNORECASE)]
        found.append(evidence(
            "repetitive", f"{share:.0%} of word triples repeat; \"{top}\" occurs {count} times",
            field="response", spans=spans,
        ))
        worst = min(worst, 0.3)
    return ScoreResult(NAME, worst, evidence=found)
