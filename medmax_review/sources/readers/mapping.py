"""Field mapping: a dataset's own column names onto the record's fields.

`--map image=img_name lang=q_lang` reads those columns as those fields, so any layout
whose columns hold the usual contents imports without conversion. The original layouts of
the field's common VQA datasets are recognised without a mapping.
"""

from dataclasses import dataclass, field

# Field names as a user may write them, to the key the record reader reads.
FIELDS = {
    "image": "image",
    "question": "question",
    "answer": "answer",
    "caption": "caption",
    "inline_mention": "inline_mention",
    "mention": "inline_mention",
    "report": "report",
    "language": "language",
    "lang": "language",
    "modality": "modality",
    "id": "id",
    "external_id": "id",
    "source": "source",
    "license": "license",
    "licence": "license",
    "credential": "credential",
}


class MappingError(ValueError):
    """A --map argument that cannot be used; the message names it."""


def fields_listed() -> str:
    return ", ".join(sorted(set(FIELDS)))


def parse(pairs: list[str] | None) -> dict[str, str]:
    """["image=img_name", "lang=q_lang"] -> {"image": "img_name", "language": "q_lang"}."""
    mapping: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, column = pair.partition("=")
        name, column = name.strip().lower().replace(" ", "_").replace("-", "_"), column.strip()
        if not sep or not name or not column:
            raise MappingError(f"{pair!r}: expected FIELD=COLUMN, e.g. image=img_name")
        if name not in FIELDS:
            raise MappingError(f"{pair!r}: unknown field {name!r}; fields are {fields_listed()}")
        if FIELDS[name] in mapping:
            raise MappingError(f"{pair!r}: field {name!r} is mapped twice")
        mapping[FIELDS[name]] = column
    return mapping


@dataclass(frozen=True)
class Layout:
    """A dataset's own layout: how to recognise it and how its columns map."""

    name: str
    needs: frozenset  # columns that must all be present
    absent: frozenset  # columns whose presence means another layout
    mapping: dict
    defaults: dict = field(default_factory=dict)  # source, license when the row has none

    def matches(self, data: dict) -> bool:
        return self.needs <= data.keys() and not (self.absent & data.keys())


LAYOUTS = (
    # SLAKE 1.0's train/validate/test.json (Liu et al., ISBI 2021), images under imgs/.
    Layout(
        name="slake",
        needs=frozenset({"img_name", "question", "answer", "q_lang"}),
        absent=frozenset({"image"}),
        mapping={"image": "img_name", "language": "q_lang", "id": "qid"},
        defaults={"source": "slake", "license": "CC-BY-4.0"},
    ),
    # VQA-RAD's "VQA_RAD Dataset Public.json" (Lau et al., Sci Data 2018).
    Layout(
        name="vqa_rad",
        needs=frozenset({"image_name", "question", "answer", "qid"}),
        absent=frozenset({"image"}),
        mapping={"image": "image_name", "id": "qid"},
        defaults={"source": "vqa_rad", "license": "CC0-1.0"},
    ),
)


def layout_of(data: dict) -> Layout | None:
    return next((layout for layout in LAYOUTS if layout.matches(data)), None)


def missing_columns(mapping: dict[str, str], columns) -> list[str]:
    return [column for column in mapping.values() if column not in columns]


def apply(data: dict, mapping: dict[str, str], defaults: dict | None = None) -> dict:
    """The row with each mapped column's value under its field name too; the columns stay
    (a column that is no field of ours is kept in meta, as the dataset named it)."""
    if not mapping and not defaults:
        return data
    out = dict(data)
    for target, column in mapping.items():
        if column in data:
            out[target] = data[column]
    for key, value in (defaults or {}).items():
        if out.get(key) in (None, ""):
            out[key] = value
    return out
