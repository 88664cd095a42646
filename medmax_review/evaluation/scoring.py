"""How an answer is scored, as MedMax scores its VQA and captioning evaluations: a closed
question by its yes/no, a multiple-choice one by its letter, an open one by an LLM judge's
binary verdict when there is a judge, else by token F1 against the reference. Pure functions."""

import re
import string
from collections import Counter

CLOSED, MULTIPLE_CHOICE, OPEN = "closed", "multiple_choice", "open"
_LETTER_ANSWER = re.compile(r"^\(?([A-Ea-e])\)?(?:[.):]|\s|$)")
_LETTER_IN = re.compile(r"(?:^|[\s(])([A-E])(?:[.):]|\s|$)")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)

JUDGE_PROMPT = (
    "You grade answers to medical questions. Question: {question}\n"
    "Reference answer: {reference}\nModel answer: {prediction}\n"
    "Is the model answer correct, given the reference? Reply with one word: yes or no."
)


def normalise(text: str) -> str:
    return " ".join(_ARTICLES.sub(" ", (text or "").lower().translate(_PUNCT)).split())


def question_type(*, task: str, instruction: str, reference: str) -> str:
    if task != "vqa":
        return OPEN
    if normalise(reference) in ("yes", "no"):
        return CLOSED
    if _LETTER_ANSWER.match(reference.strip()) and len(reference.strip()) <= 3:
        return MULTIPLE_CHOICE
    return OPEN


def yes_no(text: str) -> str:
    """The first yes or no the answer gives ("" when it gives neither)."""
    for word in normalise(text).split():
        if word in ("yes", "no"):
            return word
    return ""


def letter(text: str) -> str:
    text = (text or "").strip()
    match = _LETTER_ANSWER.match(text) or _LETTER_IN.search(text)
    return match.group(1).upper() if match else ""


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalise(prediction).split(), normalise(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def score_closed(prediction: str, reference: str) -> float:
    return float(yes_no(prediction) == normalise(reference))


def score_choice(prediction: str, reference: str) -> float:
    return float(letter(prediction) == letter(reference))


def judge_verdict(reply: str) -> float | None:
    """1.0 / 0.0 from the judge's one-word reply; None when it said neither."""
    verdict = yes_no(reply)
    return {"yes": 1.0, "no": 0.0}.get(verdict)
