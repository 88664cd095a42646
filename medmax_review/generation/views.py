from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from medmax_review.generation import selectors, services
from medmax_review.generation.forms import JobForm, TemplateForm
from medmax_review.generation.models import GenerationJob
from medmax_review.projects.access import project_for
from medmax_review.projects.models import ADMIN


def _error_field(message: str, form) -> str | None:
    """Service errors start with the field they concern ("base_url: ..."); attach them there."""
    name = message.split(":", 1)[0]
    return name if name in form.fields else None


@login_required
def generation_jobs(request, slug):
    project, _membership = project_for(request.user, slug, ADMIN)
    templates = selectors.templates_for_project(project=project)
    form = JobForm(request.POST or None, templates=templates)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.job_create(project=project, user=request.user, **form.job_arguments())
        except ValueError as exc:
            form.add_error(_error_field(str(exc), form), str(exc))
        else:
            messages.success(request, f"Job {job.pk} queued: {job.total} item(s).")
            return redirect("generation_job", slug=project.slug, job_id=job.pk)
    jobs = selectors.jobs_for_project(project=project)[:50]
    return render(
        request, "generation/job_list.html", {"project": project, "form": form, "jobs": jobs}
    )


@login_required
def generation_job(request, slug, job_id):
    project, _membership = project_for(request.user, slug, ADMIN)
    job = get_object_or_404(selectors.jobs_for_project(project=project), pk=job_id)
    context = {
        "project": project,
        "job": job,
        "progress": selectors.job_progress(job=job),
        # A running job whose worker went silent may be resumed by hand.
        "stale": selectors.job_is_stale(job=job, stale_seconds=settings.GENERATION_STALE_SECONDS),
        # Cancelled while an item was in flight: keep polling until that item is saved.
        "stopping": selectors.job_is_stopping(
            job=job, stale_seconds=settings.GENERATION_STALE_SECONDS
        ),
        "failed_items": selectors.job_failed_candidates(job=job),
    }
    template = "generation/job_detail.html"
    if request.htmx:
        template += "#progress"
    return render(request, template, context)


def _job_action(request, slug, job_id, action):
    project, _membership = project_for(request.user, slug, ADMIN)
    job = get_object_or_404(GenerationJob, pk=job_id, project=project)
    try:
        changed = action(job)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        if not changed:
            messages.error(request, f"Job {job.pk} is {job.status}; nothing changed.")
    return redirect("generation_job", slug=project.slug, job_id=job.pk)


@login_required
@require_POST
def generation_job_cancel(request, slug, job_id):
    return _job_action(request, slug, job_id, lambda job: services.job_cancel(job=job))


@login_required
@require_POST
def generation_job_resume(request, slug, job_id):
    return _job_action(request, slug, job_id, lambda job: services.job_resume(job=job))


@login_required
@require_POST
def generation_job_retry(request, slug, job_id):
    def retry(job):
        count = services.job_retry_failed(job=job)
        messages.success(request, f"{count} failed item(s) queued again.")
        return True

    return _job_action(request, slug, job_id, retry)


@login_required
def generation_templates(request, slug):
    """Templates, newest version first; saving an edit always makes a new version."""
    project, _membership = project_for(request.user, slug, ADMIN)
    services.templates_ensure_defaults()
    templates = selectors.templates_for_project(project=project)
    editing = None
    if request.GET.get("edit"):
        editing = get_object_or_404(templates, pk=request.GET["edit"])
    initial = {"task": editing.task, "name": editing.name, "text": editing.text} if editing else None
    form = TemplateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            saved = services.template_save(project=project, user=request.user, **form.cleaned_data)
        except ValueError as exc:  # TemplateError names the line and field
            form.add_error("text", str(exc))
        else:
            messages.success(request, f"Saved {saved.ref}.")
            return redirect("generation_templates", slug=project.slug)
    return render(
        request,
        "generation/template_list.html",
        {
            "project": project,
            "templates": templates.select_related("created_by"),
            "form": form,
            "editing": editing,
            "allowed_fields": selectors.template_fields_list(),
        },
    )
