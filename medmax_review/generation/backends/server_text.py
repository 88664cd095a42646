"""Text that came from an LLM server (error bodies, odd responses) before it is stored or shown:
short, on one line, and without anything that looks like a credential (servers echo request
headers back). Templates escape it; this keeps secrets and walls of text off the page."""

import re

from django.conf import settings

LIMIT = 300
REDACTED = "[redacted]"
_SECRETS = [
    re.compile(r"(?i)\b(authorization|proxy-authorization)\b[\"']?\s*[:=]\s*[\"']?[^\"',}\s]+(\s+[^\"',}\s]+)?"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)\b(api[_-]?key|access[_-]?token|secret|password|token)\b[\"']?\s*[:=]\s*[\"']?[^\"',}\s]+"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"),
    re.compile(r"\b(?:hf|gh[pousr])_[A-Za-z0-9]{16,}"),
]
_SPACE = re.compile(r"\s+")


def server_text(text, limit: int = LIMIT) -> str:
    value = str(text or "")
    key = settings.OPENAI_API_KEY
    if key and len(key) >= 4:
        value = value.replace(key, REDACTED)
    for pattern in _SECRETS:
        value = pattern.sub(REDACTED, value)
    value = _SPACE.sub(" ", value).strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"
