"""Imaging modalities and stains by their common names, abbreviations and sequence names."""

import re

# Upper-case abbreviations match case-sensitively, so "us", "ct" or "pet" in ordinary words
# never count; full names match in any case. "T1"/"T2" alone is also a vertebra, so it counts as
# MRI only when a sequence word follows.
_NAMES = {
    "CT": r"\bCTA?\b|\bHRCT\b|\bNCCT\b|\b(?i:computed tomograph\w*|CAT scans?|"
          r"computerized tomograph\w*)",
    "MRI": r"\bMRI?\b|\bMRA\b|\bFLAIR\b|\bDWI\b|\bADC\b|\bSTIR\b|\bT[12]WI\b|"
           r"\bT[12](?=[- ]?(?i:weighted|hyper|hypo|signal|image|sequence|FLAIR))|"
           r"\b(?i:magnetic resonance|diffusion[- ]weighted|fluid[- ]attenuated)",
    "X-ray": r"\bCXR\b|\bKUB\b|\b(?i:x-?rays?|radiograph\w*|plain films?|chest films?|"
             r"roentgenogra\w*)",
    "ultrasound": r"\bUS\b|\b(?i:ultrasound\w*|ultrasonograph\w*|sonograph\w*|sonogram\w*|"
                  r"doppler|echocardiogra\w*)",
    "PET": r"\bPET\b|\bFDG\b|\b(?i:positron emission)",
    "nuclear medicine": r"\bSPECT\b|\b(?i:scintigra\w*|bone scans?)",
    "H&E": r"\bH\s?&\s?E\b|\b(?i:haema?toxylin and eosin)",
    "IHC": r"\bIHC\b|\b(?i:immunohistochem\w*|immunostain\w*)",
    "fundus": r"\b(?i:fundus|fundoscop\w*|funduscop\w*)",
    "mammography": r"\b(?i:mammogra\w*)",
    "endoscopy": r"\b(?i:endoscop\w*|colonoscop\w*|gastroscop\w*)",
    "OCT": r"\bOCT\b|\b(?i:optical coherence tomograph\w*)",
}
MODALITIES = {name: re.compile(pattern) for name, pattern in _NAMES.items()}


def modalities_in(text: str) -> dict[str, list[tuple[int, int]]]:
    """{modality: [spans]} of every mention in text (negated or not: callers decide)."""
    found: dict[str, list[tuple[int, int]]] = {}
    for name, pattern in MODALITIES.items():
        spans = [m.span() for m in pattern.finditer(text)]
        if spans:
            found[name] = spans
    return found
