"""DICOM: one file is one record; pixels rendered to an 8-bit PNG with the file's window.

Only technical tags are kept. Patient, study and institution tags (names, IDs, dates) are never
copied anywhere: the record's external id is a hash of the SOPInstanceUID, not the UID itself.
"""

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.errors import InvalidDicomError

from medmax_review.sources.readers.base import ParsedRow, join_name

# Window presets (center, width) a reviewer can switch between, by modality.
PRESETS = {
    "CT": [
        {"name": "soft tissue", "center": 40, "width": 400},
        {"name": "lung", "center": -600, "width": 1500},
        {"name": "bone", "center": 400, "width": 1800},
        {"name": "brain", "center": 40, "width": 80},
    ],
}


def is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _first(value):
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return float(value[0]) if len(value) else None
    return float(value)


def render(ds) -> tuple[bytes, dict]:
    """8-bit PNG bytes and the window used: rescale, then window/level (else min/max)."""
    pixels = ds.pixel_array
    if getattr(ds, "NumberOfFrames", 1) and int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        pixels = pixels[len(pixels) // 2]  # the middle frame shows the volume best
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2"))
    if pixels.ndim == 3:  # colour: already display values
        image = Image.fromarray(pixels.astype(np.uint8)).convert("RGB")
        info = {"window": None}
    else:
        slope = _first(ds.get("RescaleSlope")) or 1.0
        intercept = _first(ds.get("RescaleIntercept")) or 0.0
        values = pixels.astype(np.float64) * slope + intercept
        center, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
        source = "file"
        if center is None or not width or width <= 0:
            low, high = float(values.min()), float(values.max())
            center, width, source = (low + high) / 2, max(high - low, 1.0), "min/max"
        low = center - width / 2
        scaled = np.clip((values - low) / width * 255.0, 0, 255).astype(np.uint8)
        if photometric == "MONOCHROME1":
            scaled = 255 - scaled
        image = Image.fromarray(scaled, mode="L")
        info = {
            "window": {"center": center, "width": width, "from": source},
            "rescale": {"slope": slope, "intercept": intercept},
        }
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue(), info


def files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink() and is_dicom(p))
    return [path]


def count(path: Path) -> int:
    return len(files(path))


def read(path: Path, display: str) -> Iterator[ParsedRow]:
    for file in files(path):
        name = display if file == path else join_name(display, file.relative_to(path))
        row = ParsedRow(file=name, line=0)
        try:
            ds = pydicom.dcmread(file)
        except (InvalidDicomError, OSError, ValueError) as exc:
            row.error("", f"not a readable DICOM file ({exc})")
            yield row
            continue
        uid = str(ds.get("SOPInstanceUID", "") or "")
        if not uid:
            row.error("SOPInstanceUID", "missing field: SOPInstanceUID")
        if "PixelData" not in ds:
            row.error("PixelData", "the file has no image (no PixelData)")
        if row.errors:
            yield row
            continue
        try:
            row.image_data, info = render(ds)
        except Exception as exc:  # pixel decoding fails in many ways (codecs, shapes)
            row.error("PixelData", f"cannot render the pixels ({type(exc).__name__}: {exc})")
            yield row
            continue
        modality = str(ds.get("Modality", "") or "")
        row.dicom = {**info, "modality": modality, "presets": PRESETS.get(modality, [])}
        row.record = {
            "source": "dicom",
            "external_id": hashlib.sha256(uid.encode()).hexdigest(),
            "credential": "no",
            "modality": modality[:40],
            # Technical tags only: nothing here can identify a patient.
            "meta": {
                "rows": int(ds.get("Rows", 0) or 0),
                "columns": int(ds.get("Columns", 0) or 0),
                "photometric": str(ds.get("PhotometricInterpretation", "") or ""),
                "body_part": str(ds.get("BodyPartExamined", "") or ""),
                **info,
            },
        }
        yield row
