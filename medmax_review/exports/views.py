from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from medmax_review.core.audit import audit_record
from medmax_review.core.models import AuditEvent
from medmax_review.exports import selectors, services
from medmax_review.exports.files import tar_stream
from medmax_review.exports.forms import ExportForm
from medmax_review.exports.models import DatasetVersion
from medmax_review.projects.access import may_read_credentialed, project_for
from medmax_review.projects.models import ADJUDICATOR, ADMIN


@login_required
@require_http_methods(["GET", "POST"])
def export_list(request, slug):
    project, membership = project_for(request.user, slug, ADMIN)
    form = ExportForm(request.POST or None, project=project)
    if request.method == "POST" and form.is_valid():
        version = services.dataset_version_create(
            project=project, user=request.user, options=form.cleaned_data["options"]
        )
        services.dataset_version_enqueue(version=version)
        return redirect("export_detail", slug=project.slug, number=version.number)
    versions = selectors.versions_for_project(
        project=project, stale_seconds=settings.EXPORT_STALE_SECONDS
    )
    return render(
        request, "exports/export_list.html",
        {"project": project, "membership": membership, "form": form, "versions": versions},
        status=400 if form.errors else 200,
    )


@login_required
@require_GET
def export_detail(request, slug, number):
    # Adjudicators may see and download exports; reviewers may not (403).
    project, membership = project_for(request.user, slug, ADJUDICATOR)
    version = get_object_or_404(DatasetVersion, project=project, number=number)
    files, image_files = services.version_files_listed(version)
    context = {
        "project": project, "membership": membership, "version": version,
        "finished": version.status in (DatasetVersion.DONE, DatasetVersion.FAILED),
        "files": files,
        "filters": selectors.version_filters_display(version=version),
        "image_files": image_files,
        "may_download": may_read_credentialed(request.user, credentialed=version.holds_credentialed),
        "stale_seconds": selectors.version_stale_seconds(
            version=version, stale_seconds=settings.EXPORT_STALE_SECONDS
        ),
    }
    # Admins may queue a failed version, or a silent one, again (the same version number).
    context["can_retry"] = membership.role == ADMIN and (
        version.status == DatasetVersion.FAILED or context["stale_seconds"] is not None
    )
    template = "exports/export_detail.html"
    if request.htmx:
        template += "#progress"
    return render(request, template, context)


@login_required
@require_POST
def export_retry(request, slug, number):
    """Build the same version number again (a failed one, or one whose worker went silent)."""
    project, _ = project_for(request.user, slug, ADMIN)
    version = get_object_or_404(DatasetVersion, project=project, number=number)
    if not services.dataset_version_retry(version=version):
        messages.error(request, f"Export v{version.number} is {version.status}; nothing changed.")
    return redirect("export_detail", slug=project.slug, number=version.number)


@login_required
@require_GET
def export_download(request, slug, number):
    """One file of a finished version (?file=train.jsonl), or the whole version as a tar."""
    project, _ = project_for(request.user, slug, ADJUDICATOR)
    version = get_object_or_404(
        DatasetVersion, project=project, number=number, status=DatasetVersion.DONE
    )
    if not may_read_credentialed(request.user, credentialed=version.holds_credentialed):
        raise Http404("This export holds credentialed rows")
    files = services.version_files(version)
    folder = services.dataset_version_folder(version)
    name = request.GET.get("file")
    audit_record(AuditEvent.EXPORT_DOWNLOADED, actor=request.user, request=request,
                 project=project, target=f"v{version.number}", file=name or "(all, tar)")
    if name:
        # Only names listed in the manifest: the request never builds a path of its own.
        if name not in files:
            raise Http404("No such file in this export")
        return FileResponse(open(folder / name, "rb"), as_attachment=True, filename=Path(name).name)
    top = f"{project.slug}-v{version.number}"
    members = [(f"{top}/{f}", folder / f) for f in files]
    response = StreamingHttpResponse(
        tar_stream(members=members), content_type="application/x-tar"
    )
    response["Content-Disposition"] = f'attachment; filename="{top}.tar"'
    return response
