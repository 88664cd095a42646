"""DICOM: one file is one record; pixels rendered to an 8-bit PNG with the file's window,
plus, for CT, one PNG per window preset (lung, bone, soft tissue, brain).

Only technical tags are kept. Patient, study and institution tags (names, IDs, dates) are never
copied anywhere: the record's external id is a hash of the SOPInstanceUID, not the UID itself.
"""

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.errors import InvalidDicomError

from medmax_review.sources.readers.base import ParsedRow, join_name

# CT windows (width, level in HU) rendered at import as their own PNGs, so a reviewer sees the
# detail each window holds rather than a contrast filter over the file's window. Keys 1-4, in order.
PRESETS = {
    "lung": {"label": "lung", "width": 1500, "level": -600},
    "bone": {"label": "bone", "width": 1800, "level": 400},
    "soft": {"label": "soft tissue", "width": 400, "level": 40},
    "brain": {"label": "brain", "width": 80, "level": 40},
}
# Only CT pixel values are Hounsfield units after rescaling; other modalities have no fixed scale.
HU_MODALITIES = {"CT"}


def is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return has_preamble(fh.read(132))
    except OSError:
        return False


def has_preamble(head: bytes) -> bool:
    """A DICOM file's bytes: 128 bytes of preamble, then "DICM"."""
    return head[128:132] == b"DICM"


def _first(value):
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return float(value[0]) if len(value) else None
    return float(value)


def _frame(ds):
    pixels = ds.pixel_array
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        pixels = pixels[len(pixels) // 2]  # the middle frame shows the volume best
    return pixels


def _rescale(ds) -> tuple[float, float]:
    return _first(ds.get("RescaleSlope")) or 1.0, _first(ds.get("RescaleIntercept")) or 0.0


def _windowed_png(ds, values, center: float, width: float) -> bytes:
    low = center - width / 2
    scaled = np.clip((values - low) / width * 255.0, 0, 255).astype(np.uint8)
    if str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")) == "MONOCHROME1":
        scaled = 255 - scaled
    return _png(Image.fromarray(scaled, mode="L"))


def _png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def render(ds) -> tuple[bytes, dict]:
    """8-bit PNG bytes and the window used: rescale, then window/level (else min/max)."""
    pixels = _frame(ds)
    if pixels.ndim == 3:  # colour: already display values
        return _png(Image.fromarray(pixels.astype(np.uint8)).convert("RGB")), {"window": None}
    slope, intercept = _rescale(ds)
    values = pixels.astype(np.float64) * slope + intercept
    center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    source = "file"
    if center is None or not width or width <= 0:
        low, high = float(values.min()), float(values.max())
        center, width, source = (low + high) / 2, max(high - low, 1.0), "min/max"
    info = {
        "window": {"center": center, "width": width, "from": source},
        "rescale": {"slope": slope, "intercept": intercept},
    }
    return _windowed_png(ds, values, center, width), info


def render_presets(ds) -> dict[str, tuple[bytes, list[int]]]:
    """{preset: (PNG bytes, [width, level])} for a greyscale CT; empty for anything else."""
    if str(ds.get("Modality", "") or "") not in HU_MODALITIES:
        return {}
    pixels = _frame(ds)
    if pixels.ndim == 3:
        return {}
    slope, intercept = _rescale(ds)
    values = pixels.astype(np.float64) * slope + intercept
    return {
        name: (_windowed_png(ds, values, p["level"], p["width"]), [p["width"], p["level"]])
        for name, p in PRESETS.items()
    }


def files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink() and is_dicom(p))
    return [path]


def count(path: Path) -> int:
    return len(files(path))


# Header fields that describe the image without identifying anyone: given to a vision model as
# context for a record that has no text of its own.
DESCRIPTIVE_TAGS = {
    "modality": "Modality",
    "body_part": "BodyPartExamined",
    "study_description": "StudyDescription",
    "series_description": "SeriesDescription",
    "view_position": "ViewPosition",
}


@dataclass
class Rendered:
    """One DICOM file ready to import: its PNG, CT presets and non-identifying details."""

    uid_hash: str
    png: bytes
    presets: dict  # {name: (PNG bytes, [width, level])}
    info: dict  # window and rescale used
    modality: str
    meta: dict  # technical and descriptive tags only


def load(file: Path) -> Rendered | tuple[str, str]:
    """The rendered file, or (field, problem) when it cannot be imported."""
    try:
        ds = pydicom.dcmread(file)
    except (InvalidDicomError, OSError, ValueError) as exc:
        return "", f"not a readable DICOM file ({exc})"
    uid = str(ds.get("SOPInstanceUID", "") or "")
    if not uid:
        return "SOPInstanceUID", "missing field: SOPInstanceUID"
    if "PixelData" not in ds:
        return "PixelData", "the file has no image (no PixelData)"
    try:
        png, info = render(ds)
        presets = render_presets(ds)
    except Exception as exc:  # pixel decoding fails in many ways (codecs, shapes)
        return "PixelData", f"cannot render the pixels ({type(exc).__name__}: {exc})"
    described = {key: str(ds.get(tag, "") or "").strip() for key, tag in DESCRIPTIVE_TAGS.items()}
    return Rendered(
        uid_hash=hashlib.sha256(uid.encode()).hexdigest(),
        png=png,
        presets=presets,
        info=info,
        modality=described["modality"],
        # Technical tags only: nothing here can identify a patient.
        meta={
            "rows": int(ds.get("Rows", 0) or 0),
            "columns": int(ds.get("Columns", 0) or 0),
            "photometric": str(ds.get("PhotometricInterpretation", "") or ""),
            **{k: v for k, v in described.items() if k != "modality"},
            **info,
        },
    )


def read(path: Path, display: str, *, skip: set[Path] = frozenset()) -> Iterator[ParsedRow]:
    """One row per DICOM file, except those in `skip` (resolved paths already imported)."""
    for file in files(path):
        if file.resolve() in skip:
            continue
        name = display if file == path else join_name(display, file.relative_to(path))
        row = ParsedRow(file=name, line=0)
        loaded = load(file)
        if isinstance(loaded, tuple):
            row.error(*loaded)
            yield row
            continue
        row.image_data, row.preset_images = loaded.png, loaded.presets
        # "presets" ({name: {sha256, window, label}}) is filled in once the images are stored.
        row.dicom = {**loaded.info, "modality": loaded.modality}
        row.record = {
            "source": "dicom",
            "external_id": loaded.uid_hash,
            "credential": "no",
            "modality": loaded.modality[:40],
            "meta": loaded.meta,
        }
        yield row
