"""Review reads: the queue (what a reviewer may claim), the review screen, the conflict fragment,
adjudication, and the standing verdicts that statistics read too."""

from datetime import datetime, time

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from medmax_review.projects.access import may_read_credentialed, readable_candidates
from medmax_review.projects.models import (
    QUEUE_LIKELY_BAD,
    QUEUE_SCORES,
    QUEUE_UNCERTAIN,
    Project,
)
from medmax_review.review.models import (
    ADJUDICATION,
    APPROVE,
    EDIT,
    EDITABLE_FIELDS,
    FLAG,
    FLAGGED,
    PENDING,
    REJECT,
    REJECT_REASONS,
    REJECTED,
    REVIEW_ACTIONS,
    UNDO,
    VERDICTS,
    Candidate,
    Decision,
    Draft,
    ReviewSlot,
)
from medmax_review.review.score_panel import review_scores
from medmax_review.review.textdiff import diff_changed, word_diff

COUNT_CAP = 100
# Keys 1-9 then 0 pick a reject reason, in the order of REJECT_REASONS.
REASON_KEYS = [str(i) for i in range(1, 10)] + ["0"]
SOURCE_FIELDS = (
    ("caption", "Caption"),
    ("inline_mention", "Inline mention"),
    ("question", "Question"),
    ("answer", "Answer"),
    ("report", "Report"),
)


def verdicts_standing(
    *, project: Project | None = None, candidate: Candidate | None = None,
    candidate_ids: list[int] | None = None,
) -> QuerySet[Decision]:
    """Each reviewer's standing verdict, per candidate of the project or on one candidate.

    A standing verdict is a reviewer's latest approve, edit or reject on a candidate that was
    not undone. System decisions (no reviewer) are not verdicts, and neither is an
    adjudication: it rules between the verdicts and sets the candidate's status, which is
    where its outcome is read; counting it as one more verdict would let every disputed
    candidate look agreed. The review screen, adjudication, the statistics and exports all
    read this (scoped to a project, one candidate, or a batch of candidate ids).
    """
    scopes = [s for s in (project, candidate, candidate_ids) if s is not None]
    if len(scopes) != 1:
        raise ValueError("give a project, a candidate or candidate ids")
    if project is not None:
        scope = Q(candidate__project=project)
    elif candidate is not None:
        scope = Q(candidate=candidate)
    else:
        scope = Q(candidate_id__in=candidate_ids)
    verdicts = Decision.objects.filter(
        action__in=VERDICTS, reviewer__isnull=False, undone_by__isnull=True
    )
    # The same candidate is in the same scope: repeating the scope inside the subquery (a
    # join, or a list of ids) only misleads the planner, by a factor of 200 on large projects.
    newer = verdicts.filter(
        candidate=OuterRef("candidate"), reviewer=OuterRef("reviewer"), id__gt=OuterRef("id")
    )
    return verdicts.filter(scope).filter(~Exists(newer)).order_by("id")


def system_rejection(candidate: Candidate) -> Decision | None:
    """The automatic rejection that stands on this candidate, if that is why it is rejected."""
    if candidate.status != REJECTED:
        return None
    last = candidate.decisions.exclude(action=UNDO).filter(undone_by__isnull=True).order_by("-id").first()
    if last is not None and last.reviewer_id is None and last.action == REJECT:
        return last
    return None


def text_at_version(*, candidate: Candidate, version: int) -> dict[str, str]:
    """The candidate's texts as they stood at `version` (from applied revisions)."""
    out = {}
    for name in EDITABLE_FIELDS:
        rev = (
            candidate.revisions.filter(field=name, applied=True, candidate_version__lte=version)
            .order_by("-candidate_version", "-id")
            .first()
        )
        out[name] = rev.text if rev else getattr(candidate, name)
    return out


def provenance_label(provenance) -> str:
    """Who wrote the candidate, in a word: its model, else its backend, else "imported".

    Provenance is free-form JSON (an imported MedMax row carries only its file and line), so
    nothing in it is assumed to be there or to be text.
    """
    if not isinstance(provenance, dict):
        return "imported"
    for key in ("model", "backend"):
        value = provenance.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return "imported"


def claim_held(*, project: Project, user) -> ReviewSlot | None:
    """The user's unexpired claim on a candidate still in review, if any.

    A candidate taken out of the queue loses its claims (queue.candidates_dequeue); the status
    check keeps a claim that escaped that from handing out a read-only page till it expires.
    """
    return (
        ReviewSlot.objects.filter(
            project=project, reviewer=user, state=ReviewSlot.CLAIMED,
            claim_expires_at__gte=timezone.now(), candidate__status=PENDING,
        )
        .select_related("candidate")
        .order_by("claimed_at", "id")
        .first()
    )


# How each project queue order reads the slots (each on its own partial index of open slots).
QUEUE_ORDERS = {
    QUEUE_SCORES: ("-priority", "id"),
    QUEUE_LIKELY_BAD: ("-risk", "-priority", "id"),
    QUEUE_UNCERTAIN: ("certainty", "-priority", "id"),
}


def claimable_slots(*, project: Project, user):
    """Open slots of pending candidates this user may see and has not reviewed, claimed or skipped.

    An undone decision no longer counts (nor does the undo itself): the candidate is the
    reviewer's to review again, whatever became of the claim the undo gave back.
    """
    mine = ReviewSlot.objects.filter(candidate=OuterRef("candidate"), reviewer=user)
    decided = Decision.objects.filter(
        candidate=OuterRef("candidate"), reviewer=user, action__in=REVIEW_ACTIONS,
        undone_by__isnull=True,
    )
    slots = ReviewSlot.objects.filter(
        project=project, state=ReviewSlot.OPEN, candidate__status=PENDING
    ).filter(~Exists(mine), ~Exists(decided))
    order = QUEUE_ORDERS.get(project.queue_order, QUEUE_ORDERS[QUEUE_SCORES])
    return readable_candidates(slots, user).order_by(*order)


def slot_for(*, candidate: Candidate, user) -> ReviewSlot | None:
    """The user's slot on this candidate (claimed or done)."""
    return ReviewSlot.objects.filter(candidate=candidate, reviewer=user).first()


def candidate_for_user(*, project: Project, candidate_id: int, user) -> Candidate:
    """The candidate, or 404 if it is not in the project or needs credentials the user lacks."""
    candidate = (
        Candidate.objects.select_related("record", "record__image", "project")
        .filter(project=project, pk=candidate_id)
        .first()
    )
    if candidate is None or not may_read_credentialed(user, credentialed=candidate.credential):
        raise Http404("No such candidate")
    return candidate


def candidate_peek_next(*, project: Project, user, exclude_id: int | None = None) -> Candidate | None:
    """The candidate claim_next would hand this user after `exclude_id`, without claiming it.

    Read only (no lock, no lease): the review pane preloads its image so the next item is ready
    when the clinician decides. Same visibility and order as claim_next, so the plan stays on the
    slot queue index (one LIMIT 1 walk from the top of the queue).
    """
    slots = claimable_slots(project=project, user=user)
    if exclude_id is not None:
        slots = slots.exclude(candidate_id=exclude_id)
    slot = slots.select_related("candidate__record__image").first()
    return slot.candidate if slot else None


def queue_counts(*, project: Project, user) -> dict:
    start = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    # Counting every open slot of a million-candidate project costs more than the page itself:
    # count up to a cap and show "100+" beyond it. This runs on every decision: at a cap of
    # 1000 it was the response's slowest query (about 40 ms, a parallel plan), at 100 about 2 ms.
    # One slot per candidate (its lowest open index) instead of DISTINCT, which would read every
    # open slot before the limit applies; queue order keeps the plan on the queue index.
    lower_open = ReviewSlot.objects.filter(
        candidate=OuterRef("candidate"), state=ReviewSlot.OPEN, index__lt=OuterRef("index")
    )
    left = (
        claimable_slots(project=project, user=user)
        .filter(~Exists(lower_open)).values("id")[: COUNT_CAP + 1].count()
    )
    held = ReviewSlot.objects.filter(project=project, reviewer=user, state=ReviewSlot.CLAIMED).count()
    today = Decision.objects.filter(
        reviewer=user, candidate__project=project, created_at__gte=start,
        action__in=(APPROVE, EDIT, REJECT, FLAG), undone_by__isnull=True,
    ).count()
    more = left > COUNT_CAP
    return {"left": f"{COUNT_CAP}+" if more else left + held, "today": today}


def review_screen(*, candidate: Candidate, user) -> dict:
    """Everything the review pane shows for this reviewer and candidate."""
    project = candidate.project
    record = candidate.record
    slot = slot_for(candidate=candidate, user=user)
    holds_claim = (
        slot is not None and slot.state == ReviewSlot.CLAIMED and candidate.status == "pending"
    )
    draft = Draft.objects.filter(candidate=candidate, reviewer=user).first() if holds_claim else None
    verdicts = list(verdicts_standing(candidate=candidate).select_related("reviewer"))
    my_verdicts = [d for d in verdicts if d.reviewer_id == user.pk]
    decided = bool(my_verdicts) or (slot is not None and slot.state == ReviewSlot.DONE)
    auto = system_rejection(candidate)
    upcoming = candidate_peek_next(project=project, user=user, exclude_id=candidate.pk)
    next_image = upcoming.record.image if upcoming is not None else None
    return {
        "candidate": candidate,
        "record": record,
        "image": record.image,
        # Preloaded by the page; the current image is already loading, so only a different one.
        "next_image": next_image if next_image is not None and next_image != record.image else None,
        "is_dicom": bool(record.image and record.image.dicom),
        "source_fields": [(label, getattr(record, f)) for f, label in SOURCE_FIELDS if getattr(record, f)],
        "provenance_label": provenance_label(candidate.provenance),
        # scores, instruction_segments, response_segments
        **review_scores(candidate),
        "holds_claim": holds_claim,
        "draft": draft,
        "draft_diff": _draft_diffs(candidate, draft) if draft else None,
        "my_verdict": my_verdicts[-1] if my_verdicts else None,
        # Blind review: the others' verdicts show only once this reviewer has decided.
        "other_verdicts": [d for d in verdicts if d.reviewer_id != user.pk]
        if decided else [],
        "auto_rejection": auto,
        "reasons": list(zip(REASON_KEYS, REJECT_REASONS, strict=True)),
        "counts": queue_counts(project=project, user=user),
        "regenerated": regenerated_from_view(candidate=candidate, user=user),
    }


def regenerated_from_view(*, candidate: Candidate, user) -> dict | None:
    """The candidate this one was generated to replace, its standing reject reasons and a word
    diff from its text to this one's; None for a first generation (or one the user may not
    read)."""
    if candidate.regenerated_from_id is None:
        return None
    old = readable_candidates(
        Candidate.objects.filter(pk=candidate.regenerated_from_id), user).first()
    if old is None:
        return None
    reasons = dict(REJECT_REASONS)
    rejects = Decision.objects.filter(candidate=old, action=REJECT, undone_by__isnull=True)
    return {
        "candidate": old,
        "reasons": sorted({reasons.get(r, r) for r in rejects.values_list("reason", flat=True)
                           if r}),
        "diffs": {f: word_diff(getattr(old, f), getattr(candidate, f)) for f in EDITABLE_FIELDS},
    }


def _draft_diffs(candidate: Candidate, draft: Draft) -> dict:
    return edit_diffs(candidate=candidate, instruction=draft.instruction, response=draft.response)


def edit_diffs(*, candidate: Candidate, instruction: str, response: str) -> dict:
    """Word diffs of an edit against the candidate's current (model) text."""
    diffs = {
        "instruction": word_diff(candidate.instruction, instruction),
        "response": word_diff(candidate.response, response),
    }
    diffs["changed"] = any(diff_changed(d) for d in diffs.values())
    return diffs


def conflict_view(*, candidate: Candidate, loaded_version: int | None) -> dict:
    """What changed since the client loaded `loaded_version`."""
    if loaded_version is None or loaded_version >= candidate.version:
        return {"candidate": candidate, "diffs": None}
    before = text_at_version(candidate=candidate, version=loaded_version)
    diffs = {f: word_diff(before[f], getattr(candidate, f)) for f in EDITABLE_FIELDS}
    diffs["changed"] = any(diff_changed(diffs[f]) for f in EDITABLE_FIELDS)
    latest = candidate.decisions.filter(candidate_version__gte=loaded_version).select_related(
        "reviewer"
    ).order_by("-id").first()
    return {"candidate": candidate, "diffs": diffs, "loaded_version": loaded_version,
            "latest": latest}


def adjudication_candidates(*, project: Project, user, limit: int = 200):
    qs = readable_candidates(
        Candidate.objects.filter(project=project, status__in=(ADJUDICATION, FLAGGED)), user)
    return qs.select_related("record").order_by("id")[:limit]


def adjudication_versions(*, candidate: Candidate) -> list[dict]:
    """Every standing verdict and flag, each with word diffs against the model's text."""
    decisions = list(verdicts_standing(candidate=candidate).select_related("reviewer")) + list(
        candidate.decisions.filter(action=FLAG, undone_by__isnull=True).select_related("reviewer")
    )
    versions = []
    for d in sorted(decisions, key=lambda d: d.pk):
        item = {"decision": d}
        if d.action in (APPROVE, EDIT):
            item["diffs"] = edit_diffs(candidate=candidate, instruction=d.instruction, response=d.response)
        versions.append(item)
    return versions


def adjudication_count(*, project: Project) -> int:
    return Candidate.objects.filter(
        Q(status=ADJUDICATION) | Q(status=FLAGGED), project=project
    ).count()


def candidates_slots_off_target(*, project: Project) -> QuerySet[Candidate]:
    """Waiting candidates whose review slots the project's "reviews required" would change.

    Fewer slots than required, or more with an open one that can go: claimed and finished
    slots are never taken away.
    """
    required = project.reviews_required
    return (
        Candidate.objects.filter(project=project, status=PENDING)
        .annotate(
            total=Count("slots"), open=Count("slots", filter=Q(slots__state=ReviewSlot.OPEN))
        )
        .filter(Q(total__lt=required) | Q(total__gt=required, open__gt=0))
    )
