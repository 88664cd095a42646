"""Optional LLM judge: a binary correctness verdict with its reason, as MedMax's judge gave."""

import json
import re

from medmax_review.scoring.scorers.base import ScoreInput, ScoreResult, evidence

NAME = "llm_judge"

PROMPT = """You check biomedical training data against its source.
Source text:
{source}

Instruction: {instruction}
Response: {response}

Is the response correct and supported by the source? Reply with JSON only:
{{"correct": true or false, "reason": "one short sentence"}}"""

_JSON = re.compile(r"\{.*\}", re.DOTALL)


def parse_verdict(content: str) -> tuple[bool | None, str]:
    """(correct, reason) from the model's reply; correct is None when the reply has no verdict."""
    match = _JSON.search(content or "")
    if match:
        try:
            data = json.loads(match.group(0))
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("correct"), bool):
            return data["correct"], str(data.get("reason", "")).strip()[:1000]
    lowered = (content or "").lower()
    if re.search(r"\"?correct\"?\s*[:=]\s*true|\bis correct\b", lowered):
        return True, (content or "").strip()[:1000]
    if re.search(r"\"?correct\"?\s*[:=]\s*false|\bincorrect\b|\bnot correct\b", lowered):
        return False, (content or "").strip()[:1000]
    return None, (content or "").strip()[:1000]


def score_llm_judge(item: ScoreInput, *, client, model: str, max_tokens: int = 200) -> ScoreResult:
    """Ask the model through an OpenAI-compatible client; the reason is kept as evidence."""
    prompt = PROMPT.format(
        source=item.source_text() or "(none)", instruction=item.instruction, response=item.response
    )
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}],
        temperature=0, max_tokens=max_tokens,
    )
    correct, reason = parse_verdict(reply.choices[0].message.content or "")
    if correct is None:
        return ScoreResult(NAME, 0.5, evidence=[evidence(
            "verdict", f"the judge gave no clear verdict: {reason or '(empty reply)'}")])
    verdict = "correct" if correct else "incorrect"
    return ScoreResult(NAME, 1.0 if correct else 0.0, evidence=[evidence(
        "verdict", f"judged {verdict} by {model}: {reason or '(no reason given)'}")])
