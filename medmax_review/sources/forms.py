from django import forms
from django.conf import settings

from medmax_review.sources.services import FORMATS

FORMAT_CHOICES = [
    ("auto", "detect"),
    ("jsonl", "JSONL (id, image, source, licence, texts)"),
    ("csv", "CSV (same columns)"),
    ("medmax", "MedMax JSONL (text, image_path, task)"),
    ("dicom", "DICOM"),
]
assert [c for c, _ in FORMAT_CHOICES] == list(FORMATS)


class ImportUploadForm(forms.Form):
    file = forms.FileField(help_text="JSONL, CSV, ZIP (a JSONL or CSV with its images) or DICOM")
    format = forms.ChoiceField(choices=FORMAT_CHOICES, initial="auto")
    strict = forms.BooleanField(required=False, help_text="import nothing if any row is bad")
    approved = forms.BooleanField(
        required=False, help_text="MedMax rows: record them as approved (a published dataset)"
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        limit = settings.MEDMAX_MAX_UPLOAD_BYTES
        if upload.size > limit:
            raise forms.ValidationError(f"{upload.name} is {upload.size} bytes; the limit is {limit}")
        return upload
