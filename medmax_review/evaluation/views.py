"""Evaluations of a project's dataset versions: the list with its chart and launch form, and one
run's accuracy (thin views over evaluation.selectors and services)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render

from medmax_review.evaluation import selectors, services
from medmax_review.exports.models import DatasetVersion
from medmax_review.projects.access import project_for
from medmax_review.projects.models import ADJUDICATOR, ADMIN
from medmax_review.review.stats import chart_values


class EvaluationForm(forms.Form):
    version = forms.IntegerField(min_value=1)
    split = forms.CharField(max_length=20, initial="test")
    backend = forms.ChoiceField(choices=[(b, b) for b in services.EVAL_BACKENDS])
    model = forms.CharField(required=False, max_length=200)
    judge_backend = forms.ChoiceField(
        required=False, choices=[("", "no judge: token F1"), *[(b, b) for b in services.EVAL_BACKENDS]])
    judge_model = forms.CharField(required=False, max_length=200)


def _accuracy_chart(rows: list[dict]) -> dict:
    return chart_values(
        rows=[{"label": f"v{r['version']} · {r['model']}", "value": 100 * r["accuracy"],
               "interval": (100 * max(0.0, r["accuracy"] - 1.96 * r["se"]),
                            100 * min(1.0, r["accuracy"] + 1.96 * r["se"])),
               "note": f"{r['split']}, n={r['n']}"} for r in rows],
        lo=0.0, hi=100.0, unit="%", decimals=1, width=760, label_width=260,
    )


@login_required
def evaluation_list(request, slug):
    project, membership = project_for(request.user, slug, ADJUDICATOR)
    form = EvaluationForm(request.POST or None)
    if request.method == "POST":
        project_for(request.user, slug, ADMIN)  # launching asks a model: admins only
        if form.is_valid():
            data = form.cleaned_data
            version = get_object_or_404(DatasetVersion, project=project, number=data["version"])
            try:
                run = services.evaluation_create(
                    version=version, split=data["split"], backend=data["backend"],
                    model=data["model"], judge_backend=data["judge_backend"],
                    judge_model=data["judge_model"], user=request.user)
            except services.EvaluationError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Evaluation {run.pk} queued: {run.total} items.")
                return redirect("evaluation_detail", slug=slug, run_id=run.pk)
    rows = selectors.accuracy_by_version(project=project)
    return render(request, "evaluation/evaluation_list.html", {
        "project": project, "membership": membership, "form": form,
        "runs": selectors.runs_for_project(project=project)[:50],
        "chart": _accuracy_chart(rows), "is_admin": membership.role == ADMIN,
    })


@login_required
def evaluation_detail(request, slug, run_id):
    project, membership = project_for(request.user, slug, ADJUDICATOR)
    run = get_object_or_404(selectors.runs_for_project(project=project), pk=run_id)
    summary = run.summary or {}
    template = "evaluation/evaluation_detail.html#progress" if request.htmx else \
        "evaluation/evaluation_detail.html"
    return render(request, template, {
        "project": project, "membership": membership, "run": run,
        "groups": [(title, summary.get(key, {})) for title, key in (
            ("Task", "by_task"), ("Source", "by_source"), ("Question type", "by_question_type"))],
    })
