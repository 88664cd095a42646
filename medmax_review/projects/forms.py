import json

from django import forms

from medmax_review.core.checks import SCORE_NAMES
from medmax_review.projects.models import REVIEWER, ROLE_CHOICES, Project


class ProjectSettingsForm(forms.ModelForm):
    auto_reject_thresholds = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='JSON, e.g. {"format": 0.2, "phi": 0.5}: a score below its threshold '
        "auto-rejects the candidate (a reviewer can overturn it).",
    )

    class Meta:
        model = Project
        fields = ["name", "guidelines", "reviews_required", "queue_order", "auto_reject_max_wrong"]
        widgets = {"guidelines": forms.Textarea(attrs={"rows": 12})}
        labels = {"queue_order": "Review queue order",
                  "auto_reject_max_wrong": "Suggested thresholds: most wrong rejections"}
        help_texts = {
            "queue_order": "The learned orders need 20 scored verdicts of both kinds; until the "
                           "project's reject model exists, the weakest scores come first.",
            "auto_reject_max_wrong": "A share from 0 to 1 (0.05 = 5%): the statistics page "
                                     "suggests thresholds that would have wrongly rejected less.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["auto_reject_thresholds"] = json.dumps(self.instance.auto_reject_thresholds)
        # Left out of a submission, these keep their values (older forms and scripts).
        for name in ("queue_order", "auto_reject_max_wrong"):
            self.fields[name].required = False

    def clean_queue_order(self):
        return self.cleaned_data["queue_order"] or self.instance.queue_order

    def clean_reviews_required(self):
        value = self.cleaned_data["reviews_required"]
        if not 1 <= value <= 10:
            raise forms.ValidationError("Between 1 and 10 reviews per candidate.")
        return value

    def clean_auto_reject_max_wrong(self):
        value = self.cleaned_data["auto_reject_max_wrong"]
        if value is None:
            return self.instance.auto_reject_max_wrong
        if not 0 < value < 1:
            raise forms.ValidationError("A share between 0 and 1, e.g. 0.05 for 5%.")
        return value

    def clean_auto_reject_thresholds(self):
        raw = (self.cleaned_data.get("auto_reject_thresholds") or "").strip() or "{}"
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} at column {exc.colno}.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Give an object mapping score names to thresholds.")
        for name, threshold in value.items():
            if name not in SCORE_NAMES:
                raise forms.ValidationError(f"Unknown score {name!r}; known: {', '.join(SCORE_NAMES)}.")
            if not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
                raise forms.ValidationError(f"Threshold for {name!r} must be a number from 0 to 1.")
        return value

    def save(self, commit=True):
        self.instance.auto_reject_thresholds = self.cleaned_data["auto_reject_thresholds"]
        return super().save(commit=commit)


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150)
    # The least powerful role by default: granting admin is a deliberate choice.
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial=REVIEWER)
    # No credentialed-access box: only staff grant it (Django admin or `credentialed_access`).


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=ROLE_CHOICES)
