"""What each source's licence asks of whoever republishes its records: the citation we know for
the sources we ship or meet often, whether attribution is required, and the licence's id on the
Hugging Face Hub (for a dataset card's `license:`)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownSource:
    title: str
    license: str
    attribution: str


# Sources of demo_data/ (see its README.md) and the credentialed source MedMax draws on.
KNOWN_SOURCES = {
    "vqa_rad": KnownSource(
        "VQA-RAD", "CC0-1.0",
        "Lau JJ, Gayen S, Ben Abacha A, Demner-Fushman D. A dataset of clinically generated visual"
        " questions and answers about radiology images. Sci Data 5, 180251 (2018)."
        " doi:10.1038/sdata.2018.251",
    ),
    "slake": KnownSource(
        "SLAKE 1.0", "CC-BY-4.0",
        "Liu B, Zhan L-M, Xu L, Ma L, Yang Y, Wu X-M. SLAKE: A Semantically-Labeled"
        " Knowledge-Enhanced Dataset for Medical Visual Question Answering. ISBI 2021"
        " (arXiv:2102.09542). www.med-vqa.com/slake",
    ),
    "skimage": KnownSource(
        "scikit-image bundled biomedical images", "CC0-1.0",
        "Images shipped in the scikit-image package (skimage/data/), with the licence stated in"
        " each skimage.data function's docstring.",
    ),
    "mimic_cxr": KnownSource(
        "MIMIC-CXR", "PhysioNet Credentialed Health Data License 1.5.0",
        "Johnson AEW, Pollard TJ, Berkowitz SJ, et al. MIMIC-CXR, a de-identified publicly"
        " available database of chest radiographs with free-text reports. Sci Data 6, 317 (2019)."
        " Images are available to credentialed PhysioNet users only.",
    ),
}

# Licence ids the Hub's dataset cards know, by their SPDX-style spelling folded to lower case.
_HUB_IDS = {
    "cc0-1.0", "cc-by-4.0", "cc-by-3.0", "cc-by-sa-4.0", "cc-by-sa-3.0", "cc-by-nc-4.0",
    "cc-by-nc-sa-4.0", "cc-by-nc-nd-4.0", "cc-by-nd-4.0", "mit", "apache-2.0", "bsd-3-clause",
    "bsd-2-clause", "odc-by", "pddl", "odbl", "cdla-permissive-2.0", "openrail",
}


# Public-domain dedications and marks: nothing asked of whoever republishes.
_NO_CONDITIONS = {"cc0-1.0", "pddl", "no-known-copyright-restrictions", "public-domain"}


def attribution_required(license_id: str) -> bool:
    """Creative Commons BY licences (BY, BY-SA, BY-NC, ...) require credit to the source."""
    return license_id.strip().lower().startswith("cc-by")


def hub_license(license_id: str) -> str:
    """The Hub's id for a licence: itself when the Hub knows it, "other" when not, "unknown"
    when the record has none."""
    folded = license_id.strip().lower()
    if not folded:
        return "unknown"
    return folded if folded in _HUB_IDS else "other"


def attribution_for(source: str, license_id: str, citation: str = "") -> tuple[str, str]:
    """(who to credit, what the licence asks) for one source and licence. `citation` is what
    the import kept from the source file, used when the source is not one we know."""
    known = KNOWN_SOURCES.get(source)
    if known:
        credit = f"{known.title}: {known.attribution}"
    elif citation:
        credit = citation
    else:
        credit = "No citation is on record for this source: check its terms before redistributing."
    license_text = license_id or "no licence recorded"
    if attribution_required(license_id):
        duty = "attribution is required: credit the source as above wherever the data goes."
    elif license_id.strip().lower() in _NO_CONDITIONS:
        duty = "no attribution is required; citing the source is still good practice."
    else:
        duty = "check the licence's terms before redistributing; credit the source as above."
    return credit, f"{license_text}: {duty}"
