import json
import shutil

import numpy as np
import pydicom
from django.conf import settings
from django.forms.models import model_to_dict
from PIL import Image

from medmax_review.sources import image_files
from medmax_review.sources.models import ImageAsset, SourceRecord
from medmax_review.sources.services import records_import


def _all_text(record: SourceRecord) -> str:
    """Every stored value of the record and all image rows (presets too), as one string to search."""
    values = model_to_dict(record)
    values["images"] = [model_to_dict(a) for a in ImageAsset.objects.all()]
    return json.dumps(values, default=str, ensure_ascii=False)


def _preset_pixels(asset: ImageAsset) -> dict[str, np.ndarray]:
    presets = asset.dicom["presets"]
    return {
        name: np.asarray(Image.open(image_files.open_file(
            ImageAsset.objects.get(sha256=p["sha256"]).file)))
        for name, p in presets.items()
    }


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

    asset = SourceRecord.objects.get().image
    assert asset.format == "png" and asset.modality == "CT"
    assert (asset.width, asset.height) == (ds.Columns, ds.Rows)
    # CT_small has no window tags: the full rescaled range is used.
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    window = asset.dicom["window"]
    assert window["from"] == "min/max"
    assert window["center"] == (hu.min() + hu.max()) / 2
    assert asset.dicom["rescale"] == {"slope": 1.0, "intercept": -1024.0}
    pixels = np.asarray(Image.open(image_files.open_file(asset.file)))
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
    # MR values have no fixed scale: no presets, only the file's window.
    assert "presets" not in asset.dicom
    pixels = np.asarray(Image.open(image_files.open_file(asset.file)))
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
    # 2 rendered scans + 4 CT presets, written once.
    assert ImageAsset.objects.count() == 6
    assert len(list((settings.MEDIA_ROOT / "images").rglob("*.png"))) == 6
    assert set(SourceRecord.objects.values_list("modality", flat=True)) == {"CT", "MR"}


def test_records_import_dicom_bad_file(project, tmp_path):
    path = tmp_path / "broken.dcm"
    path.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00garbage")

    report = records_import(project=project, path=path)

    assert report.created == 0
    assert report.errors and report.errors[0].file == "broken.dcm"


def test_records_import_dicom_ct_renders_window_presets(project, demo_data):
    path = demo_data / "dicom" / "CT_small.dcm"
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)

    records_import(project=project, path=path)

    asset = SourceRecord.objects.get().image
    presets = asset.dicom["presets"]
    assert set(presets) == {"lung", "bone", "soft", "brain"}
    assert {n: p["window"] for n, p in presets.items()} == {
        "lung": [1500, -600], "bone": [1800, 400], "soft": [400, 40], "brain": [80, 40]}
    assert presets["soft"]["label"] == "soft tissue"
    shas = {p["sha256"] for p in presets.values()}
    assert len(shas) == 4 and asset.sha256 not in shas
    stored = ImageAsset.objects.filter(sha256__in=shas)
    assert {(a.format, a.width, a.height) for a in stored} == {("png", ds.Columns, ds.Rows)}
    pixels = _preset_pixels(asset)
    saturated = {n: float(((p == 0) | (p == 255)).mean()) for n, p in pixels.items()}
    # An 80 HU brain window clips most of a chest slice; the 1500 HU lung window clips little.
    assert saturated["brain"] > 3 * saturated["lung"]
    assert saturated["brain"] > 0.5
    # Soft tissue (~40 HU) is bright in the lung window (level -600), mid-grey in the brain one.
    tissue = (hu > 20) & (hu < 60)
    assert tissue.sum() > 50
    assert pixels["lung"][tissue].mean() > 200
    assert 60 < pixels["brain"][tissue].mean() < 200
    # Each preset is its own window on the HU values, not a filter over the main image.
    expected = np.clip((hu - (400 - 900)) / 1800 * 255, 0, 255).astype(np.uint8)
    assert np.array_equal(pixels["bone"], expected)


def test_records_import_dicom_reimport_updates_old_presets(project, demo_data):
    path = demo_data / "dicom" / "CT_small.dcm"
    records_import(project=project, path=path)
    asset = SourceRecord.objects.get().image
    fresh = asset.dicom
    # An image imported before presets were rendered, when presets were a list of names.
    asset.dicom = {**fresh, "presets": [{"name": "lung", "center": -600, "width": 1500}]}
    asset.save()

    report = records_import(project=project, path=path)

    asset.refresh_from_db()
    assert (report.created, report.duplicates) == (0, 1)
    assert asset.dicom == fresh
    assert ImageAsset.objects.count() == 5
