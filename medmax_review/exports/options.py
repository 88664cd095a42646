"""Export options: what may be asked for, checked and normalised before a version is created.

The cleaned dict is stored on the DatasetVersion and is the only input a build reads besides
the database, so every default is written out (a rebuild never depends on today's defaults).
"""

import datetime as dt

from medmax_review.core.medmax import TASKS
from medmax_review.exports.writers import FORMATS

IMAGE_MODES = ("copy", "archive", "none")
# How a row names its task: our canonical name ("vqa"), or the spelling its source file used
# ("VQA", "Image Generation"), which the import keeps in the candidate's provenance.
TASK_NAMES = ("canonical", "source")
FIELDS = (
    "status", "format", "images", "split", "provenance", "tasks", "sources", "licenses",
    "exclude_licenses", "min_agreeing", "since", "until", "task_names",
)


class ExportOptionsError(ValueError):
    """A bad export option: `field` names it, the message says what is wrong with it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _list(raw, name: str) -> list[str]:
    if raw in (None, ""):
        return []
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        raise ExportOptionsError(name, "expected a list of names")
    return sorted({str(i).strip() for i in items if str(i).strip()})


def _split(raw) -> list[float] | None:
    if raw in (None, "", []):
        return None
    parts = raw.split(",") if isinstance(raw, str) else raw
    try:
        values = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise ExportOptionsError("split", f"{raw!r} is not three numbers like 0.9,0.05,0.05") from None
    if len(values) != 3 or any(v < 0 for v in values) or abs(sum(values) - 1) > 1e-6:
        raise ExportOptionsError(
            "split", f"{raw!r} must be three non-negative proportions (train, validation, test)"
            " adding up to 1"
        )
    return values


def _day(raw, name: str) -> str | None:
    if raw in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(raw)).isoformat()
    except ValueError:
        raise ExportOptionsError(name, f"{raw!r} is not a date like 2026-01-31") from None


def _choice(raw, name: str, choices, default: str) -> str:
    value = raw or default
    if value not in choices:
        raise ExportOptionsError(name, f"{value!r} is not one of {', '.join(choices)}")
    return value


def export_options_clean(raw: dict) -> dict:
    """Validated, normalised options (sorted lists, fixed keys), as stored on the version."""
    unknown = set(raw) - set(FIELDS)
    if unknown:
        names = ", ".join(sorted(unknown))
        raise ExportOptionsError(names, f"unknown option(s): {names}")
    if raw.get("status", "approved") != "approved":
        raise ExportOptionsError("status", "only approved candidates are exported")
    fmt = _choice(raw.get("format"), "format", tuple(FORMATS), "medmax")
    images = _choice(raw.get("images"), "images", IMAGE_MODES, "copy")
    refused = FORMATS[fmt].image_mode_refused(images)
    if refused:
        raise ExportOptionsError("images", refused)
    tasks = _list(raw.get("tasks"), "tasks")
    bad = [t for t in tasks if t not in TASKS]
    if bad:
        raise ExportOptionsError("tasks", f"unknown task(s) {', '.join(bad)}")
    try:
        min_agreeing = int(raw.get("min_agreeing") or 0)
    except (TypeError, ValueError):
        raise ExportOptionsError("min_agreeing", "must be a whole number") from None
    if min_agreeing < 0:
        raise ExportOptionsError("min_agreeing", "must be 0 or more")
    options = {
        "status": "approved",
        "format": fmt,
        "images": images,
        "split": _split(raw.get("split")),
        "provenance": bool(raw.get("provenance")),
        "tasks": tasks,
        "sources": _list(raw.get("sources"), "sources"),
        "licenses": _list(raw.get("licenses"), "licenses"),
        "exclude_licenses": _list(raw.get("exclude_licenses"), "exclude_licenses"),
        "min_agreeing": min_agreeing,
        "since": _day(raw.get("since"), "since"),
        "until": _day(raw.get("until"), "until"),
        "task_names": _choice(raw.get("task_names"), "task_names", TASK_NAMES, "canonical"),
    }
    if options["since"] and options["until"] and options["since"] > options["until"]:
        raise ExportOptionsError("until", "must not be before since")
    return options
