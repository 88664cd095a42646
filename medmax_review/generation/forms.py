from django import forms

from medmax_review.core.medmax import TASK_CHOICES
from medmax_review.generation.backends.openai_compat import RESPONSE_FORMATS
from medmax_review.generation.models import BACKEND_CHOICES, PromptTemplate


class JobForm(forms.Form):
    task = forms.ChoiceField(choices=TASK_CHOICES)
    backend = forms.ChoiceField(choices=BACKEND_CHOICES)
    template = forms.ModelChoiceField(
        queryset=PromptTemplate.objects.none(), required=False,
        empty_label="newest version of the task's default",
    )
    model = forms.CharField(required=False, max_length=200)
    base_url = forms.CharField(
        required=False, max_length=500, label="Base URL",
        help_text="empty: the server's OPENAI_BASE_URL; others must be on LLM_ALLOWED_BASE_URLS",
    )
    source = forms.CharField(required=False, max_length=100)
    license = forms.CharField(required=False, max_length=100)
    modality = forms.CharField(required=False, max_length=40)
    limit = forms.IntegerField(required=False, min_value=1)
    only_new = forms.BooleanField(required=False, initial=True, label="Only records not generated yet")
    samples = forms.IntegerField(min_value=1, max_value=20, initial=1)
    temperature = forms.FloatField(min_value=0, max_value=2, initial=0.7)
    max_tokens = forms.IntegerField(min_value=16, max_value=8192, initial=512)
    vision = forms.BooleanField(required=False, label="Model accepts images")
    response_format = forms.ChoiceField(choices=[(f, f) for f in RESPONSE_FORMATS], initial="json_object")
    price_per_1k_prompt = forms.DecimalField(required=False, min_value=0, decimal_places=6)
    price_per_1k_completion = forms.DecimalField(required=False, min_value=0, decimal_places=6)
    token_cap = forms.IntegerField(required=False, min_value=1)
    cost_cap_usd = forms.DecimalField(required=False, min_value=0, decimal_places=4, label="Cost cap (USD)")

    def __init__(self, *args, templates=None, **kwargs):
        super().__init__(*args, **kwargs)
        if templates is not None:
            self.fields["template"].queryset = templates

    def job_arguments(self) -> dict:
        data = self.cleaned_data
        parameters = {"temperature": data["temperature"], "max_tokens": data["max_tokens"]}
        if data["backend"] == "openai":
            parameters.update(
                vision=data["vision"], response_format=data["response_format"],
                price_per_1k_prompt=data["price_per_1k_prompt"] or 0,
                price_per_1k_completion=data["price_per_1k_completion"] or 0,
            )
        return {
            "task": data["task"],
            "backend": data["backend"],
            "model": data["model"],
            "base_url": data["base_url"],
            "template": data["template"],
            "samples": data["samples"],
            "filters": {
                "source": data["source"], "license": data["license"], "modality": data["modality"],
                "limit": data["limit"], "only_new": data["only_new"],
            },
            "parameters": parameters,
            "token_cap": data["token_cap"],
            "cost_cap_usd": data["cost_cap_usd"],
        }


class TemplateForm(forms.Form):
    task = forms.ChoiceField(choices=TASK_CHOICES)
    name = forms.SlugField(max_length=100, initial="default")
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 16, "cols": 100}))
