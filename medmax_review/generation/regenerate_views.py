"""Regenerate the candidates the browser's filters select (thin view over
generation.regeneration): the first POST shows how many and asks for the template or model,
the second (confirm=yes) launches the jobs."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from medmax_review.generation import regeneration
from medmax_review.generation import selectors as generation_selectors
from medmax_review.generation.models import BACKEND_CHOICES
from medmax_review.projects.access import project_for
from medmax_review.projects.models import ADMIN
from medmax_review.review import browse_selectors
from medmax_review.review.browse_selectors import BrowseError
from medmax_review.review.browse_views import BrowseFilterForm, _form_errors


class RegenerateForm(forms.Form):
    # Prefixed: the browser's filters travel in the same POST and also have a backend and a
    # model (the ones that wrote the candidates), which these must not be taken for.
    prefix = "regenerate"

    backend = forms.ChoiceField(choices=BACKEND_CHOICES)
    model = forms.CharField(required=False, max_length=200)
    template_ref = forms.CharField(required=False, max_length=150, label="Template version")


@login_required
@require_POST
def candidate_regenerate(request, slug):
    project, membership = project_for(request.user, slug, ADMIN)
    filters_form = BrowseFilterForm(request.POST)
    if not filters_form.is_valid():
        return HttpResponseBadRequest(f"Filters: {_form_errors(filters_form)}")
    try:
        selected = browse_selectors.candidates_filtered(
            project=project, filters=filters_form.filters(), user=request.user)
        form = RegenerateForm(request.POST if request.POST.get("confirm") == "yes" else None)
        template = None
        if form.is_bound and form.is_valid() and form.cleaned_data["template_ref"]:
            template = generation_selectors.template_by_ref(
                project=project, ref=form.cleaned_data["template_ref"])
            if template is None:
                form.add_error("template_ref", "No such template version in this project")
        plan = regeneration.regeneration_plan(candidates=selected, template=template)
        if form.is_bound and form.is_valid():
            jobs = regeneration.regeneration_launch(
                project=project, candidates=selected, backend=form.cleaned_data["backend"],
                model=form.cleaned_data["model"], template=template, user=request.user)
            messages.success(request, "Regeneration queued: " + ", ".join(
                f"job {j.pk} ({j.task}, {j.total} item{'s' if j.total != 1 else ''})"
                for j in jobs))
            return redirect("generation_jobs", slug=slug)
    except (BrowseError, ValueError) as exc:
        return HttpResponseBadRequest(str(exc))
    return render(request, "review/browse_regenerate.html", {
        "project": project, "membership": membership, "form": form,
        "filters": filters_form.filters(), "count": sum(len(r) for r in plan.values()),
        "tasks": sorted((task, len(r)) for task, r in plan.items()),
        "templates": generation_selectors.templates_for_project(project=project),
        "hidden": [(k, v) for k, v in request.POST.items()
                   if k in filters_form.fields and v],
    })
