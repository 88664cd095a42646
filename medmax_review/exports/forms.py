from django import forms

from medmax_review.core.medmax import TASK_CHOICES
from medmax_review.exports import services
from medmax_review.exports.writers import FORMATS
from medmax_review.projects.models import Project
from medmax_review.sources.selectors import record_source_licences


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=[(name, w.label) for name, w in FORMATS.items()])
    images = forms.ChoiceField(
        choices=[("copy", "images/ folder (inside the files for Parquet)"),
                 ("archive", "one images.tar"), ("none", "no images")]
    )
    task_names = forms.ChoiceField(
        choices=[("canonical", "canonical (vqa, image_generation)"),
                 ("source", "as imported (VQA, Image Generation)")],
        initial="canonical", required=False, label="Task names",
        help_text="as imported: each record's own task spelling, and a re-exported MedMax row's"
                  " own empty image_path",
    )
    split = forms.CharField(
        required=False, label="Split (train, validation, test)",
        help_text="e.g. 0.9,0.05,0.05; empty: every row in one file (one train split)",
        widget=forms.TextInput(attrs={"placeholder": "0.9,0.05,0.05", "data-export-split": ""}),
    )
    provenance = forms.BooleanField(
        required=False, label="Provenance columns (candidate id, model, template, reviewers, scores)"
    )
    tasks = forms.MultipleChoiceField(
        choices=TASK_CHOICES, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="none ticked: every task",
    )
    sources = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="none ticked: every source"
    )
    licenses = forms.MultipleChoiceField(
        required=False, label="Only these licences", widget=forms.CheckboxSelectMultiple
    )
    exclude_licenses = forms.MultipleChoiceField(
        required=False, label="Leave out these licences", widget=forms.CheckboxSelectMultiple
    )
    min_agreeing = forms.IntegerField(
        min_value=0, initial=0, label="Minimum agreeing reviews",
        help_text="system approvals of imported rows do not count as reviews",
    )
    since = forms.DateField(
        required=False, label="Decided on or after", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="Decided on or before", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        pairs = record_source_licences(project=project)
        sources = sorted({s for s, _ in pairs})
        licenses = sorted({lic for _, lic in pairs if lic})
        self.fields["sources"].choices = [(s, s) for s in sources]
        self.fields["licenses"].choices = [(lic, lic) for lic in licenses]
        self.fields["exclude_licenses"].choices = [(lic, lic) for lic in licenses]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            data["options"] = services.export_options_clean(self.options_raw(data))
        except services.ExportOptionsError as exc:
            if exc.field in self.fields:
                self.add_error(exc.field, str(exc))
            else:
                raise forms.ValidationError(str(exc)) from exc
        return data

    @staticmethod
    def options_raw(data: dict) -> dict:
        return {
            "format": data["format"], "images": data["images"], "split": data.get("split"),
            "provenance": data.get("provenance"), "tasks": data.get("tasks"),
            "sources": data.get("sources"), "licenses": data.get("licenses"),
            "exclude_licenses": data.get("exclude_licenses"),
            "min_agreeing": data.get("min_agreeing") or 0,
            "since": data["since"].isoformat() if data.get("since") else None,
            "until": data["until"].isoformat() if data.get("until") else None,
            "task_names": data.get("task_names"),
        }
