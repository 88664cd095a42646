from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET

from medmax_review.projects.access import project_for
from medmax_review.projects.models import ADMIN
from medmax_review.sources import image_files, selectors, services
from medmax_review.sources.forms import ImportUploadForm
from medmax_review.sources.models import ImportRun
from medmax_review.sources.uploads import SizeLimitedUpload


@csrf_exempt  # checked by csrf_protect below, once the size limit is in the upload chain
@login_required
def import_upload(request, slug):
    # Before anything reads the body, so an over-limit upload stops as it streams in.
    request.upload_handlers.insert(0, SizeLimitedUpload(request))
    return _import_upload(request, slug)


@csrf_protect
def _import_upload(request, slug):
    project, membership = project_for(request.user, slug, ADMIN)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    refused = getattr(request, "upload_refused", "")
    if refused:
        form = ImportUploadForm(request.POST, request.FILES)
        form.is_valid()
        form.errors["file"] = form.error_class([refused])  # instead of "required"
    elif request.method == "POST" and form.is_valid():
        run = services.import_run_launch(
            project=project,
            upload=form.cleaned_data["file"],
            fmt=form.cleaned_data["format"],
            options={"strict": form.cleaned_data["strict"],
                     "approved": form.cleaned_data["approved"],
                     "map": form.cleaned_data["map"]},
            user=request.user,
        )
        return redirect("import_run", slug=project.slug, run_id=run.pk)
    runs = selectors.import_runs_for_project(project=project)
    return render(
        request,
        "sources/import_upload.html",
        {"project": project, "membership": membership, "form": form, "runs": runs},
        status=400 if form.errors else 200,
    )


@login_required
@require_GET
def import_run(request, slug, run_id):
    project, membership = project_for(request.user, slug, ADMIN)
    run = get_object_or_404(ImportRun, pk=run_id, project=project)
    context = {
        "project": project,
        "membership": membership,
        "run": run,
        "finished": run.is_finished,
        "candidates_created": (run.options or {}).get("candidates_created"),
        "rolled_back": (run.options or {}).get("rolled_back"),
    }
    template = "sources/import_run.html"
    if request.htmx:
        template += "#progress"
    return render(request, template, context)


@login_required
@require_GET
def image_file(request, sha256):
    asset = selectors.image_asset_for_user(user=request.user, sha256=sha256)
    if asset is None:
        raise Http404("No such image")
    try:
        image = image_files.open_file(asset.file)
    except FileNotFoundError:
        raise Http404("Image file missing") from None
    response = FileResponse(image, content_type=f"image/{asset.format}")
    # Content-addressed: the bytes behind this URL never change (so the review screen can
    # preload the next image and reuse it without revalidating); access can, so keep it private.
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    return response
