import json
import shutil

import numpy as np
import pydicom
from django.forms.models import model_to_dict
from PIL import Image

from medmax_review.sources.images import image_path
from medmax_review.sources.models import ImageAsset, SourceRecord
from medmax_review.sources.services import records_import


def _all_text(record: SourceRecord) -> str:
    """Every stored value of the record and its image row, as one string to search."""
    values = model_to_dict(record)
    values["image"] = model_to_dict(record.image)
    return json.dumps(values, default=str, ensure_ascii=False)


def test_records_import_dicom_file_stores_no_patient_tags(project, demo_data):
    path = demo_data / "dicom" / "CT_small.dcm"
    ds = pydicom.dcmread(path)

    report = records_import(project=project, path=path)

    assert report.errors == []
    assert report.created == 1
    record = SourceRecord.objects.get()
    assert record.modality == "CT"
    assert record.source == "dicom"
    stored = _all_text(record)
    for tag in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "SOPInstanceUID",
                "InstitutionName", "ReferringPhysicianName"):
        value = str(ds.get(tag, "") or "")
        if value:
            assert value not in stored, f"{tag} leaked into the record"
    assert "CompressedSamples" not in stored  # the patient name's family part
    assert record.external_id != ds.SOPInstanceUID and len(record.external_id) == 64


def test_records_import_dicom_renders_with_rescale_and_minmax(project, demo_data):
    path = demo_data / "dicom" / "CT_small.dcm"
    ds = pydicom.dcmread(path)

    records_import(project=project, path=path)

    asset = ImageAsset.objects.get()
    assert asset.format == "png" and asset.modality == "CT"
    assert (asset.width, asset.height) == (ds.Columns, ds.Rows)
    # CT_small has no window tags: the full rescaled range is used.
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    window = asset.dicom["window"]
    assert window["from"] == "min/max"
    assert window["center"] == (hu.min() + hu.max()) / 2
    assert asset.dicom["rescale"] == {"slope": 1.0, "intercept": -1024.0}
    assert asset.dicom["presets"], "CT offers window presets"
    pixels = np.asarray(Image.open(image_path(asset)))
    assert pixels.dtype == np.uint8
    assert (pixels.min(), pixels.max()) == (0, 255)
    # Brightness follows the data: the brightest source pixel is white.
    assert pixels[np.unravel_index(hu.argmax(), hu.shape)] == 255


def test_records_import_dicom_uses_file_window(project, demo_data):
    path = demo_data / "dicom" / "MR_small.dcm"

    records_import(project=project, path=path)

    asset = ImageAsset.objects.get()
    assert asset.dicom["window"] == {"center": 600.0, "width": 1600.0, "from": "file"}
    assert SourceRecord.objects.get().modality == "MR"
    pixels = np.asarray(Image.open(image_path(asset)))
    ds = pydicom.dcmread(path)
    raw = ds.pixel_array.astype(float)
    expected = np.clip((raw - (600 - 800)) / 1600 * 255, 0, 255).astype(np.uint8)
    assert np.array_equal(pixels, expected)


def test_records_import_dicom_folder_and_reimport(project, demo_data, tmp_path):
    folder = tmp_path / "scans"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(demo_data / "dicom" / "CT_small.dcm", folder)
    shutil.copy(demo_data / "dicom" / "MR_small.dcm", folder / "sub" / "mr")
    (folder / "notes.txt").write_text("not a scan")

    first = records_import(project=project, path=folder)
    again = records_import(project=project, path=folder, fmt="dicom")

    assert (first.created, first.errors) == (2, [])
    assert (again.created, again.duplicates) == (0, 2)
    assert set(SourceRecord.objects.values_list("modality", flat=True)) == {"CT", "MR"}


def test_records_import_dicom_bad_file(project, tmp_path):
    path = tmp_path / "broken.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00garbage")

    report = records_import(project=project, path=path)

    assert report.created == 0
    assert report.errors and report.errors[0].file == "broken.dcm"
