from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, push_url, reswap, retarget

from medmax_review.projects.access import project_for
from medmax_review.projects.models import ADJUDICATOR, ADMIN, REVIEWER, Project
from medmax_review.review import claims, selectors, services
from medmax_review.review.models import REJECT_REASONS
from medmax_review.review.reviews_required import candidates_reviews_required_apply

PAGE = "review/review_page.html"


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _version(request) -> int:
    version = _int(request.POST.get("version"))
    if version is None:
        raise services.InvalidInput("This form does not say which version it was loaded at: reload the page.")
    return version


def _conflict(request, exc: services.Conflict, project):
    context = {"project": project, "message": str(exc)}
    if exc.candidate is not None:
        context.update(selectors.conflict_view(candidate=exc.candidate, loaded_version=exc.loaded_version))
    response = render(request, "review/_conflict.html", context, status=409)
    return reswap(retarget(response, "#conflict"), "innerHTML")


def _invalid(request, exc: Exception):
    response = render(request, "review/_conflict.html", {"message": str(exc)}, status=400)
    return reswap(retarget(response, "#conflict"), "innerHTML")


def _answers_conflicts(view):
    """409 with what changed for a stale write, 400 naming the field for bad input."""

    @wraps(view)
    def wrapper(request, slug, *args, **kwargs):
        try:
            return view(request, slug, *args, **kwargs)
        except services.Conflict as exc:
            # The view checked access before anything could raise.
            return _conflict(request, exc, Project.objects.get(slug=slug))
        except services.InvalidInput as exc:
            return _invalid(request, exc)

    return wrapper


def _candidate(request, slug, candidate_id):
    project, membership = project_for(request.user, slug, REVIEWER)
    candidate = selectors.candidate_for_user(project=project, candidate_id=candidate_id, user=request.user)
    return project, membership, candidate


def _pane(request, project, candidate):
    """The review pane for `candidate` (or the empty queue), as a fragment for htmx."""
    context = {"project": project}
    if candidate is not None:
        context.update(selectors.review_screen(candidate=candidate, user=request.user))
        url = reverse("review_candidate", args=[project.slug, candidate.pk])
    else:
        context["counts"] = selectors.queue_counts(project=project, user=request.user)
        url = reverse("review_next", args=[project.slug])
    return push_url(render(request, f"{PAGE}#pane", context), url)


@login_required
@require_GET
def review_next(request, slug):
    project, membership = project_for(request.user, slug, REVIEWER)
    candidate = claims.claim_next(project=project, user=request.user)
    if candidate is not None:
        return redirect("review_candidate", slug=slug, candidate_id=candidate.pk)
    counts = selectors.queue_counts(project=project, user=request.user)
    return render(
        request, PAGE,
        {"project": project, "counts": counts, "can_adjudicate": membership.has_role(ADJUDICATOR)},
    )


@login_required
@require_GET
def review_candidate(request, slug, candidate_id):
    project, membership, candidate = _candidate(request, slug, candidate_id)
    claims.claim_candidate(candidate=candidate, user=request.user)
    context = {
        "project": project, "can_adjudicate": membership.has_role(ADJUDICATOR),
        **selectors.review_screen(candidate=candidate, user=request.user),
    }
    template = f"{PAGE}#pane" if request.htmx else PAGE
    return render(request, template, context)


@login_required
@require_POST
@_answers_conflicts
def review_decide(request, slug, candidate_id):
    project, _, candidate = _candidate(request, slug, candidate_id)
    services.decision_record(
        candidate_id=candidate.pk, user=request.user, action=request.POST.get("action", ""),
        version=_version(request), idempotency_key=request.POST.get("idempotency_key") or None,
        reason=request.POST.get("reason", ""), comment=request.POST.get("comment", ""),
        instruction=request.POST.get("instruction"), response=request.POST.get("response"),
    )
    # The next item is claimed and rendered in this same response: no second round trip.
    return _pane(request, project, claims.claim_next(project=project, user=request.user))


@login_required
@require_POST
@_answers_conflicts
def review_draft(request, slug, candidate_id):
    project, _, candidate = _candidate(request, slug, candidate_id)
    draft = services.draft_save(
        candidate_id=candidate.pk, user=request.user, version=_version(request),
        instruction=request.POST.get("instruction", ""), response=request.POST.get("response", ""),
    )
    diffs = selectors.edit_diffs(candidate=candidate, instruction=draft.instruction, response=draft.response)
    return render(request, f"{PAGE}#draft_saved", {"draft": draft, "draft_diff": diffs})


@login_required
@require_POST
@_answers_conflicts
def review_undo(request, slug):
    project, _ = project_for(request.user, slug, REVIEWER)
    undo = services.decision_undo_last(
        project=project, user=request.user, idempotency_key=request.POST.get("idempotency_key") or None
    )
    candidate = selectors.candidate_for_user(
        project=project, candidate_id=undo.candidate_id, user=request.user
    )
    return _pane(request, project, candidate)


@login_required
@require_POST
@_answers_conflicts
def review_overturn(request, slug, candidate_id):
    project, _, candidate = _candidate(request, slug, candidate_id)
    services.candidate_overturn_auto_reject(
        candidate_id=candidate.pk, user=request.user, version=_version(request)
    )
    candidate.refresh_from_db()
    return _pane(request, project, candidate)


@login_required
@require_GET
def adjudication_queue(request, slug):
    project, _ = project_for(request.user, slug, ADJUDICATOR)
    candidates = selectors.adjudication_candidates(project=project, user=request.user)
    return render(
        request, "review/adjudication_queue.html", {"project": project, "candidates": candidates}
    )


@login_required
@_answers_conflicts
def adjudication_candidate(request, slug, candidate_id):
    project, _ = project_for(request.user, slug, ADJUDICATOR)
    candidate = selectors.candidate_for_user(project=project, candidate_id=candidate_id, user=request.user)
    if request.method == "POST":
        choice = request.POST.get("choice", "")
        services.candidate_adjudicate(
            candidate_id=candidate.pk, user=request.user, version=_version(request),
            choice=None if choice == "reject" else _int(choice),
            reason=request.POST.get("reason", ""), comment=request.POST.get("comment", ""),
            idempotency_key=request.POST.get("idempotency_key") or None,
        )
        queue = reverse("adjudication_queue", args=[slug])
        return HttpResponseClientRedirect(queue) if request.htmx else redirect(queue)
    context = {
        "project": project,
        "candidate": candidate,
        "record": candidate.record,
        "versions": selectors.adjudication_versions(candidate=candidate),
        "reasons": REJECT_REASONS,
    }
    return render(request, "review/adjudication_candidate.html", context)


@login_required
def reviews_required_confirm(request, slug):
    """After "reviews required" changed: apply it to the candidates already waiting, or not."""
    project, _ = project_for(request.user, slug, ADMIN)
    if request.method == "POST":
        if request.POST.get("apply") == "yes":
            change = candidates_reviews_required_apply(project=project)
            messages.success(
                request,
                f"{project.reviews_required} reviews required now applies to "
                f"{change.candidates} waiting candidates: {change.added} review slots added, "
                f"{change.removed} removed, {change.settled} candidates decided by the reviews "
                "they already had.",
            )
        else:
            messages.info(
                request, f"{project.reviews_required} reviews required applies to new candidates only."
            )
        return redirect("project_settings", slug)
    affected = selectors.candidates_slots_off_target(project=project).count()
    return render(
        request, "review/reviews_required.html", {"project": project, "affected": affected}
    )
