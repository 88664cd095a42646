"""The two notices every export carries: README.md, a Hugging Face dataset card whose YAML
`configs` name the data files of each split (so `load_dataset(folder)` reads those and nothing
else, never an imagefolder of the images/ beside them), and ATTRIBUTION.md, each source's licence
and the credit it asks for.

Like the data files they say nothing about when, where or by whom the export was made, and list
sources in a fixed order: the same rows give the same bytes.
"""

import json
from dataclasses import dataclass

from medmax_review.core.licences import attribution_for, hub_license
from medmax_review.exports.writers import hf_split

README = "README.md"
ATTRIBUTION = "ATTRIBUTION.md"


@dataclass(frozen=True)
class SourceUse:
    """One (source, licence) pair of the published rows: how many, and the citation the import
    kept for it (the first one met, in row order)."""

    source: str
    license: str
    rows: int
    citation: str = ""


def _q(text: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar: safe for any name or path.
    return json.dumps(text, ensure_ascii=False)


def dataset_card(
    *, format_name: str, format_label: str, files: dict[str, list[str]],
    rows: dict[str, int], sources: list[SourceUse], empty_splits: list[str],
) -> str:
    """README.md: YAML front matter (licences, configs with data_files per split) and a summary."""
    licences = sorted({hub_license(s.license) for s in sources}) or ["unknown"]
    lines = ["---"]
    if len(licences) == 1:
        lines.append(f"license: {licences[0]}")
    else:
        lines += ["license:"] + [f"- {lic}" for lic in licences]
    lines += ["tags:", "- medical", "- medmax"]
    if files:
        lines += ["configs:", "- config_name: default", "  data_files:"]
        for split, names in files.items():
            lines.append(f"  - split: {_q(hf_split(split))}")
            lines.append("    path:")
            lines += [f"    - {_q(name)}" for name in names]
    lines += ["---", "", "# MedMax Review export", ""]
    lines.append(
        f"Approved, clinician-reviewed records exported by MedMax Review as `{format_name}`:"
        f" {format_label}. Image paths are relative to this folder. `manifest.json` lists every"
        " file with its SHA-256, the filters and the review counts; "
        f"`{ATTRIBUTION}` lists each source's licence and the credit it asks for."
    )
    lines += ["", "| split | rows |", "| --- | --- |"]
    lines += [f"| {hf_split(split)} | {rows.get(split, 0)} |" for split in files]
    if empty_splits:
        lines += ["", "Splits without rows have no file: " + ", ".join(empty_splits) + "."]
    lines += ["", "| source | licence | rows |", "| --- | --- | --- |"]
    lines += [f"| {s.source} | {s.license or '(none)'} | {s.rows} |" for s in sources]
    return "\n".join(lines) + "\n"


def attribution_notice(sources: list[SourceUse]) -> str:
    """ATTRIBUTION.md: for each source and licence, who to credit and what the licence asks."""
    lines = [
        "# Attribution", "",
        "The records of this dataset come from the sources below, each under its own licence."
        " Redistribute each part under its own terms.", "",
    ]
    if not sources:
        lines += ["This export has no rows.", ""]
    for use in sources:
        credit, duty = attribution_for(use.source, use.license, use.citation)
        lines += [
            f"## {use.source} ({use.license or 'no licence recorded'}), {use.rows} rows", "",
            f"- Credit: {credit}", f"- Licence: {duty}", "",
        ]
    return "\n".join(lines)
