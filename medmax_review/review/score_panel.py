"""The review screen's score panel: each score with its value and band, what it checked, against
which source words, by which method, what it found, and where it disagrees with another score.

Scores are stored JSON written by another process (and by older scorer versions), so nothing in
them is assumed to be there or to be well formed. The highlighted spans of the candidate's text
carry the reasons of the findings that marked them.
"""

from dataclasses import dataclass

from django.utils.dateparse import parse_datetime

from medmax_review.core.bands import FAIL, FAIR, GOOD, NA, POOR
from medmax_review.review.browse_selectors import BANDS, scores_for_display
from medmax_review.review.models import EDITABLE_FIELDS
from medmax_review.review.textdiff import reasoned_segments

# Source fields a scorer reads as "the source", in the order the review screen shows them.
SOURCE_FIELDS = ("caption", "inline_mention", "question", "answer", "report")
QUOTE_CHARS = 160


@dataclass(frozen=True)
class Scorer:
    label: str
    checks: str
    method: str
    # "source": the record's source text; otherwise a sentence saying what it compares with.
    against: str = "source"


SCORERS = {
    "grounding": Scorer(
        "Grounding", "how many of the response's content words the source text contains",
        "word overlap after stemming (plus sentence-embedding similarity when installed)"),
    "consistency": Scorer(
        "Consistency",
        "numbers, laterality, modality, anatomy and negation in the response",
        "rules: each fact named in the response is looked up in the source"),
    "phi": Scorer(
        "PHI", "names, dates, phone numbers, e-mail and street addresses, record numbers and "
               "ages over 89 in the instruction, context and response",
        "patterns, each hit with a redaction", "the candidate's own text (no source needed)"),
    "format": Scorer(
        "Format", "the MedMax record rules (one separator, the image placeholder), empty or "
                  "too short responses, refusals and repeated phrases",
        "rules", "the MedMax format"),
    "image": Scorer(
        "Image quality", "that the image decodes, is at least 64 pixels a side, is not blank, "
                         "and is not the same or a near-identical image as another record's",
        "pixel statistics and a perceptual hash (dHash) of the image",
        "the image file and the project's other images"),
    "near_duplicate": Scorer(
        "Near-duplicate text", "whether this candidate's words copy an earlier candidate's "
                               "on the same image",
        "MinHash over word triples", "earlier candidates of this project"),
    "llm_judge": Scorer(
        "LLM judge", "whether the response is correct and supported by the source",
        "a language model's verdict, with its reason"),
}

# Scores that look at the same thing from two sides; when one finds a problem the other does
# not, the panel says why they differ instead of leaving two contradictory verdicts side by side.
RELATED = {
    frozenset(("image", "near_duplicate")):
        "the image score compares pixels with other records' images, the near-duplicate score "
        "compares this candidate's words with earlier candidates'",
    frozenset(("grounding", "consistency")):
        "grounding counts source words the response reuses without checking that they agree; "
        "consistency checks numbers, sides, modality, anatomy and negation only",
    frozenset(("grounding", "llm_judge")):
        "grounding counts shared words; the judge reads for meaning",
    frozenset(("consistency", "llm_judge")):
        "consistency checks a few kinds of fact by rule; the judge reads the whole response",
}
FINDINGS_BANDS = (FAIR, POOR, FAIL)
# Rules that describe how a score was computed, not something it found.
METHOD_RULES = ("method",)


def _label(name: str) -> str:
    scorer = SCORERS.get(name)
    return scorer.label if scorer else name.replace("_", " ").capitalize()


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1].rstrip() + "…"


def _against(scorer: Scorer | None, sources: dict[str, str]) -> list[str]:
    if scorer is not None and scorer.against != "source":
        return [scorer.against]
    shown = [f'{name.replace("_", " ")}: "{_quote(text)}"' for name, text in sources.items() if text]
    return shown or ["no source text (the record has none)"]


def _nothing_to_check(rule: str, text: str) -> bool:
    # Scores stored before scorers reported n/a filed "nothing to check" as lexical, good.
    return rule == "nothing_to_check" or "no content words to check" in text


def _not_applicable(score: dict) -> bool:
    return score["band"] == NA or any(
        _nothing_to_check(str(e["rule"]), str(e["text"])) for e in score["evidence"]
    )


def _spans(item) -> list[tuple[int, int]]:
    spans = item.get("spans") if isinstance(item, dict) else None
    out = []
    for span in spans if isinstance(spans, list) else []:
        try:
            out.append((int(span[0]), int(span[1])))
        except (TypeError, ValueError, IndexError):
            continue
    return out


def _findings(name: str, raw: dict, texts: dict[str, str]) -> tuple[list[dict], list[str]]:
    """(findings, method notes) from a score's evidence, each finding with its marked words."""
    evidence = raw.get("evidence") if isinstance(raw, dict) else None
    shown = scores_for_display(scores={name: raw})[0]["evidence"]
    items = evidence if isinstance(evidence, list) else [None] * len(shown)
    findings, methods = [], []
    for item, display in zip(items, shown, strict=False):
        rule, text = str(display["rule"] or ""), str(display["text"] or "")
        if rule in METHOD_RULES:
            # Stored as "method: lexical overlap only ..."; the panel labels the line itself.
            methods.append(text.removeprefix("method:").strip())
            continue
        if _nothing_to_check(rule, text):
            continue
        field = display["field"] or "response"
        text_of_field = texts.get(field, "")
        words = [text_of_field[s:e] for s, e in _spans(item) if 0 <= s < e <= len(text_of_field)]
        findings.append({
            "rule": rule.replace("_", " "), "text": text, "field": display["field"] or "response",
            "suggestion": display.get("suggestion") or "", "words": words[:12],
        })
    return findings, methods


def score_panel(*, scores: dict, texts: dict[str, str], sources: dict[str, str]) -> list[dict]:
    """The panel's rows, one per score, in name order (the order the history page uses)."""
    rows = []
    for shown in scores_for_display(scores=scores):
        name = shown["name"]
        raw = (scores or {}).get(name)
        scorer = SCORERS.get(name)
        findings, methods = _findings(name, raw, texts)
        na = _not_applicable(shown)
        band = NA if na else (shown["band"] if shown["band"] in BANDS else "unknown")
        value = shown["value"]
        rows.append({
            "name": name,
            "label": _label(name),
            "value": None if na or isinstance(value, bool) or not isinstance(value, int | float)
            else value,
            "band": band,
            "band_class": "na" if band == NA else band,
            "checks": scorer.checks if scorer else "not described by this version of the app",
            "against": _against(scorer, sources),
            "method": "; ".join(methods) or (scorer.method if scorer else "not recorded"),
            "findings": findings,
            # What the scorer said it could not check, shown in place of findings.
            "nothing_to_check": next((e["text"] for e in shown["evidence"] if e["text"]), "")
            if na else "",
            "notes": [],
            "differs_from": [],  # labels of the scores the notes explain a disagreement with
        })
    _note_disagreements(rows)
    return rows


def _note_disagreements(rows: list[dict]) -> None:
    by_name = {row["name"]: row for row in rows}
    for pair, why in RELATED.items():
        a, b = (by_name.get(n) for n in sorted(pair))
        if a is None or b is None:
            continue
        for this, other in ((a, b), (b, a)):
            if this["band"] == GOOD and other["band"] in FINDINGS_BANDS and other["findings"]:
                this["notes"].append(
                    f"{other['label']} is {other['band']} ({other['findings'][0]['text']}) while "
                    f"this score is good: {why}."
                )
                other["notes"].append(f"{this['label']} is good: {why}.")
                this["differs_from"].append(other["label"])
                other["differs_from"].append(this["label"])


def marked_texts(*, scores: dict, texts: dict[str, str]) -> dict[str, list]:
    """{field: [(text, reasons)]}: each editable field cut at the findings' spans, every marked
    piece with the reasons ("Consistency · laterality: ...") of the findings that cover it.

    Evidence that names no field is about the response.
    """
    spans = {name: [] for name in EDITABLE_FIELDS}
    for name, score in sorted((scores or {}).items()):
        evidence = score.get("evidence") if isinstance(score, dict) else None
        for item in evidence if isinstance(evidence, list) else []:
            if not isinstance(item, dict):
                continue
            field = item.get("field") or "response"
            if field not in spans:
                continue
            reason = f"{_label(name)} · {str(item.get('rule') or '').replace('_', ' ')}: " \
                     f"{item.get('text') or ''}"
            spans[field] += [(s, e, reason) for s, e in _spans(item)]
    return {name: reasoned_segments(texts.get(name, ""), spans[name]) for name in EDITABLE_FIELDS}


def reject_risk_shown(candidate) -> dict | None:
    """The stored reject risk as the panel shows it (None before the project has a model):
    percent, what it was learned from, and the features that raise it most."""
    if candidate.reject_risk is None:
        return None
    detail = candidate.reject_risk_detail if isinstance(candidate.reject_risk_detail, dict) else {}
    drivers = [(str(name).replace("_", " "), weight) for name, weight in detail.get("drivers", [])
               if isinstance(weight, int | float)]
    return {
        "risk": candidate.reject_risk, "percent": round(100 * candidate.reject_risk),
        "decisions": detail.get("decisions"), "rejected": detail.get("rejected"),
        "model": detail.get("model"), "held_out": bool(detail.get("held_out")),
        "trained_at": parse_datetime(str(detail.get("trained_at") or "")), "drivers": drivers,
    }


def review_scores(candidate) -> dict:
    """The score panel and the marked instruction and response of one candidate."""
    record = candidate.record
    texts = {name: getattr(candidate, name) or "" for name in (*EDITABLE_FIELDS, "context")}
    sources = {name: getattr(record, name) or "" for name in SOURCE_FIELDS}
    if candidate.context:
        sources["context"] = candidate.context
    marked = marked_texts(scores=candidate.scores, texts=texts)
    return {
        "reject_risk": reject_risk_shown(candidate),
        "scores": score_panel(scores=candidate.scores, texts=texts, sources=sources),
        "instruction_segments": marked["instruction"],
        "response_segments": marked["response"],
    }
