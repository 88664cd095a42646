"""Candidate browser, candidate history, bulk actions and the statistics page (thin views)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from medmax_review.core.medmax import TASK_CHOICES
from medmax_review.projects.access import project_for
from medmax_review.projects.figures import figures_read
from medmax_review.projects.models import ADJUDICATOR, ADMIN, REVIEWER
from medmax_review.review import browse_selectors, bulk, stats
from medmax_review.review.browse_selectors import BANDS, BrowseError, BrowseFilters
from medmax_review.review.models import CANDIDATE_STATUS_CHOICES, REJECT_REASONS

SORT_CHOICES = [
    ("-id", "newest first"), ("id", "oldest first"),
    ("-priority", "priority, high first"), ("priority", "priority, low first"),
]


class BrowseFilterForm(forms.Form):
    task = forms.ChoiceField(choices=[("", "any task"), *TASK_CHOICES], required=False)
    status = forms.ChoiceField(
        choices=[("", "any status"), *CANDIDATE_STATUS_CHOICES], required=False
    )
    source = forms.CharField(required=False, max_length=100)
    license = forms.CharField(required=False, max_length=100)
    score = forms.CharField(required=False, max_length=60, label="Score")
    band = forms.ChoiceField(choices=[("", "any band"), *[(b, b) for b in BANDS]], required=False)
    reviewer = forms.IntegerField(required=False, min_value=1)
    model = forms.CharField(required=False, max_length=200)
    backend = forms.CharField(required=False, max_length=20)
    template = forms.CharField(required=False, max_length=150, label="Template version")
    reason = forms.ChoiceField(
        choices=[("", "any reject reason"), *REJECT_REASONS], required=False
    )
    disagreement = forms.BooleanField(required=False, label="Disagreements only")
    sort = forms.CharField(required=False, max_length=70)

    def clean_score(self):
        name = self.cleaned_data["score"]
        if name:
            try:
                browse_selectors.score_name_check(name)
            except BrowseError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return name

    def clean_sort(self):
        sort = self.cleaned_data["sort"] or "-id"
        try:
            browse_selectors.sort_spec(sort)
        except BrowseError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return sort

    def filters(self) -> BrowseFilters:
        d = self.cleaned_data
        return BrowseFilters(
            task=d["task"], status=d["status"], source=d["source"], license=d["license"],
            score_name=d["score"], band=d["band"], reviewer_id=d["reviewer"], model=d["model"],
            backend=d["backend"], template_ref=d["template"], reason=d["reason"],
            disagreement=d["disagreement"], sort=d["sort"],
        )


def _form_errors(form) -> str:
    return "; ".join(f"{name}: {' '.join(errs)}" for name, errs in form.errors.items())


def _sort_choices(score_names: list[str]) -> list[tuple[str, str]]:
    extra = []
    for name in score_names:
        extra += [(f"score:{name}", f"{name}, low first"), (f"-score:{name}", f"{name}, high first")]
    return SORT_CHOICES + extra


@login_required
def candidate_browse(request, slug):
    project, membership = project_for(request.user, slug, ADJUDICATOR)
    form = BrowseFilterForm(request.GET)
    page, error = None, ""
    if not form.is_valid():
        error = f"Filters: {_form_errors(form)}"
    else:
        try:
            page = browse_selectors.candidates_browse(
                project=project, filters=form.filters(), cursor=request.GET.get("cursor", ""),
                limit=browse_selectors.PAGE_SIZE, user=request.user,
            )
        except BrowseError as exc:
            error = str(exc)
    query = {k: v for k, v in request.GET.items() if k != "cursor" and v}
    if request.htmx:
        # The results fragment offers only the score names (bulk action, sort); the filter form
        # with its sources, licences and reviewers stays on the page.
        choices = {"score_names": browse_selectors.score_names_recent(project=project)}
    else:
        choices = browse_selectors.browse_choices(project=project)
    context = {
        "project": project,
        "membership": membership,
        "form": form,
        "page": page,
        "error": error,
        "choices": choices,
        "is_admin": membership.role == ADMIN,
        "query": urlencode(query),
        "first_page": not request.GET.get("cursor"),
        "bulk_actions": bulk.BULK_ACTIONS,
        "sort_choices": _sort_choices(choices["score_names"]),
        "current_sort": form.cleaned_data.get("sort", "-id"),
    }
    template = "review/browse.html#results" if request.htmx else "review/browse.html"
    # htmx swaps only 2xx answers: a bad filter chosen in the form is shown in the results area.
    status = 400 if error and not request.htmx else 200
    return render(request, template, context, status=status)


@login_required
def candidate_history(request, slug, candidate_id):
    project, membership = project_for(request.user, slug, ADJUDICATOR)
    history = browse_selectors.candidate_history(
        project=project, candidate_id=candidate_id, user=request.user)
    if history is None:
        raise Http404("No such candidate in this project")
    return render(
        request, "review/browse_history.html",
        {"project": project, "membership": membership, **history},
    )


@login_required
@require_POST
def candidate_bulk(request, slug):
    """First POST: show how many candidates the action touches. With confirm=yes: run it."""
    project, membership = project_for(request.user, slug, ADMIN)
    form = BrowseFilterForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(f"Filters: {_form_errors(form)}")
    threshold_text = request.POST.get("threshold", "").strip()
    try:
        threshold = float(threshold_text) if threshold_text else None
    except ValueError:
        return HttpResponseBadRequest(f"threshold: {threshold_text!r} is not a number")
    action = bulk.BulkRequest(
        action=request.POST.get("action", ""), filters=form.filters(),
        score_name=request.POST.get("bulk_score", ""), threshold=threshold,
    )
    try:
        count = bulk.bulk_count(project=project, request=action, user=request.user)
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc))
    back = urlencode({k: v for k, v in request.POST.items() if k in form.fields and v})
    if request.POST.get("confirm") == "yes":
        entry = bulk.bulk_run(project=project, user=request.user, request=action)
        messages.success(
            request,
            f"{dict(bulk.BULK_ACTIONS)[action.action]}: {entry.details['count']} candidates.",
        )
        return redirect(f"{reverse('candidate_browse', args=[slug])}?{back}")
    return render(
        request, "review/browse_bulk.html",
        {"project": project, "membership": membership, "action": action, "count": count,
         "action_label": dict(bulk.BULK_ACTIONS)[action.action], "back": back,
         "hidden": [(k, v) for k, v in request.POST.items()
                    if k not in ("csrfmiddlewaretoken", "confirm")]},
    )


@login_required
def project_stats(request, slug):
    project, membership = project_for(request.user, slug, REVIEWER)
    own_only = not membership.has_role(ADJUDICATOR)
    figures = figures_read(project=project, name="stats")
    data = {} if figures.data is None else stats.dashboard_data(
        figures=figures.data, reviewer_only_id=request.user.id if own_only else None)
    return render(
        request, "review/dashboard.html",
        {"project": project, "membership": membership, "own_only": own_only,
         "figures": figures, **data},
    )
