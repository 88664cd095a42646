from django import forms
from django.conf import settings

from medmax_review.sources.services import FORMATS, MappingError, mapping_parse

FORMAT_CHOICES = [
    ("auto", "detect from the content"),
    ("jsonl", "JSON lines (id, image, source, licence, texts)"),
    ("json", "JSON array or objects (same fields)"),
    ("csv", "CSV or TSV (same columns; delimiter detected)"),
    ("parquet", "Parquet (Hugging Face datasets, images embedded)"),
    ("medmax", "MedMax rows (text, image_path, task)"),
    ("llava", "LLaVA / LLaVA-Med / PubMedVision conversations"),
    ("dicom", "DICOM"),
    ("reports", "radiology reports (.txt) with their images or DICOM"),
]
assert [c for c, _ in FORMAT_CHOICES] == list(FORMATS)


class ImportUploadForm(forms.Form):
    file = forms.FileField(help_text="JSON, JSONL, CSV/TSV, Parquet, a ZIP holding one with its images (or reports with their studies), or DICOM")
    format = forms.ChoiceField(choices=FORMAT_CHOICES, initial="auto")
    strict = forms.BooleanField(required=False, help_text="import nothing if any row is bad")
    approved = forms.BooleanField(
        required=False, help_text="rows that carry a response (MedMax, LLaVA): record them as approved (a published dataset)"
    )

    map = forms.CharField(
        required=False, label="Column mapping",
        help_text="FIELD=COLUMN pairs separated by spaces, e.g. image=img_name lang=q_lang",
    )

    def clean_map(self):
        try:
            return mapping_parse(self.cleaned_data["map"].split())
        except MappingError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.MEDMAX_MAX_UPLOAD_BYTES
        if upload.size > limit:
            raise forms.ValidationError(f"{upload.name} is {upload.size} bytes; the limit is {limit}")
        return upload
