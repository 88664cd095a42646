"""Review writes: decisions, drafts, undo, outcomes, adjudication. Decisions are never changed.

Every write names the candidate version the reviewer loaded; if the candidate moved on since,
`Conflict` is raised and nothing is written. A client idempotency key makes a repeated
submission (double click, retry) return the first decision instead of recording a second one.
"""

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from medmax_review.projects.models import Project
from medmax_review.review import claims, queue
from medmax_review.review.models import (
    ADJUDICATE,
    ADJUDICATION,
    APPROVE,
    APPROVED,
    EDIT,
    EDITABLE_FIELDS,
    FLAG,
    FLAGGED,
    PENDING,
    REJECT,
    REJECT_REASONS,
    REJECTED,
    REVIEW_ACTIONS,
    SKIP,
    UNDO,
    AuditEntry,
    Candidate,
    Decision,
    Draft,
    ReviewSlot,
    Revision,
)
from medmax_review.review.selectors import system_rejection, text_at_version, verdicts_standing

REASON_KEYS = [key for key, _ in REJECT_REASONS]


def _reason_labels() -> str:
    return ", ".join(label for _, label in REJECT_REASONS)


class Conflict(Exception):
    """The candidate is not in the state the client saw; nothing was written."""

    def __init__(self, message: str, *, candidate: Candidate | None = None, loaded_version=None):
        super().__init__(message)
        self.candidate = candidate
        self.loaded_version = loaded_version


class InvalidInput(ValueError):
    """A submitted field is wrong; the message, shown to the reviewer as it is, says what to do
    in words (reason labels, not their codes)."""


@dataclass
class Outcome:
    decision: Decision
    replayed: bool = False  # the same idempotency key was seen before


def _locked(candidate_id: int) -> Candidate:
    # Deciding reads the other slots to compute the outcome: two reviewers finishing the last
    # two slots at the same moment must not both see "one still open". Locking the candidate row
    # serialises writes on one candidate, and only on it: `of` keeps the joined project row
    # unlocked, or every decision in the project would queue behind every other.
    return (
        Candidate.objects.select_for_update(of=("self",)).select_related("project").get(pk=candidate_id)
    )


def _check_version(candidate: Candidate, version: int) -> None:
    if candidate.version != version:
        raise Conflict(
            "This candidate changed since you loaded it.",
            candidate=candidate, loaded_version=version,
        )


def _replay(key: str | None, user) -> Decision | None:
    if not key:
        return None
    found = Decision.objects.filter(idempotency_key=key).first()
    if found is not None and found.reviewer_id != getattr(user, "pk", None):
        raise InvalidInput("This form was already sent by someone else: reload the page and try again.")
    return found


def _dequeue(candidate: Candidate, *, status: str, **fields) -> None:
    """queue.candidates_dequeue for one locked candidate, mirrored on the instance."""
    queue.candidates_dequeue(candidate_ids=[candidate.pk], status=status, **fields)
    for name, value in {"status": status, **fields}.items():
        setattr(candidate, name, value)
    candidate.version += 1


def _requeue(candidate: Candidate, **fields) -> None:
    """queue.candidates_requeue for one locked candidate, mirrored on the instance."""
    if queue.candidates_requeue(project=candidate.project, candidates=[candidate], **fields):
        for name, value in {"status": PENDING, "decided_at": None, **fields}.items():
            setattr(candidate, name, value)
        candidate.version += 1


def _held_slot(candidate: Candidate, user) -> ReviewSlot:
    slot = ReviewSlot.objects.select_for_update().filter(candidate=candidate, reviewer=user).first()
    if slot is not None and slot.state == ReviewSlot.CLAIMED:
        return slot
    if slot is not None:
        raise Conflict("You already decided on this candidate.", candidate=candidate)
    # The lease ran out and was released; take a free slot again if there is one.
    slot = claims.claim_candidate(candidate=candidate, user=user)
    if slot is None:
        raise Conflict("Your claim on this candidate expired and others took it.", candidate=candidate)
    return slot


def decision_record(
    *,
    candidate_id: int,
    user,
    action: str,
    version: int,
    idempotency_key: str | None = None,
    reason: str = "",
    comment: str = "",
    instruction: str | None = None,
    response: str | None = None,
) -> Outcome:
    """Record one reviewer action (approve / edit / reject / skip / flag) on a claimed candidate."""
    if action not in REVIEW_ACTIONS:
        raise InvalidInput("That is not a review action: approve, edit, reject, skip or flag.")
    if action == REJECT and reason not in REASON_KEYS:
        raise InvalidInput(f"Choose a reason for the rejection: {_reason_labels()}.")
    if action == EDIT and not (response or "").strip():
        raise InvalidInput("The edited response is empty: write one, or close the editor.")
    earlier = _replay(idempotency_key, user)
    if earlier is not None:
        return Outcome(earlier, replayed=True)
    try:
        with transaction.atomic():
            return Outcome(
                _decide(
                    candidate_id=candidate_id, user=user, action=action, version=version,
                    key=idempotency_key or None, reason=reason if action == REJECT else "",
                    comment=comment.strip(), instruction=instruction, response=response,
                )
            )
    except IntegrityError:
        # The same key raced in on a parallel request: that one won, report it.
        earlier = _replay(idempotency_key, user)
        if earlier is None:
            raise
        return Outcome(earlier, replayed=True)


def _decide(*, candidate_id, user, action, version, key, reason, comment, instruction, response):
    candidate = _locked(candidate_id)
    _check_version(candidate, version)
    if candidate.status != PENDING:
        raise Conflict(f"This candidate is already {candidate.status}.", candidate=candidate)
    slot = _held_slot(candidate, user)
    texts = {"instruction": candidate.instruction, "response": candidate.response}
    if action == EDIT:
        texts = {
            "instruction": candidate.instruction if instruction is None else instruction,
            "response": response,
        }
        Revision.objects.bulk_create(
            [
                Revision(candidate=candidate, field=name, text=texts[name], author=user,
                         candidate_version=candidate.version, applied=False)
                for name in EDITABLE_FIELDS
                if texts[name] != getattr(candidate, name)
            ]
        )
    decision = Decision.objects.create(
        candidate=candidate, reviewer=user, action=action, reason=reason, comment=comment,
        candidate_version=candidate.version, idempotency_key=key,
        instruction=texts["instruction"] if action in (APPROVE, EDIT) else "",
        response=texts["response"] if action in (APPROVE, EDIT) else "",
    )
    now = timezone.now()
    if action == SKIP:
        claims.claim_release(slot=slot)
        return decision
    slot.state, slot.done_at, slot.claim_expires_at = ReviewSlot.DONE, now, None
    slot.save(update_fields=["state", "done_at", "claim_expires_at"])
    Draft.objects.filter(candidate=candidate, reviewer=user).delete()
    if action == FLAG:
        # Held for discussion: out of the queue, the other reviewers' slots with it.
        _dequeue(candidate, status=FLAGGED)
    else:
        candidate_settle(candidate=candidate)
    return decision


def candidate_settle(*, candidate: Candidate) -> None:
    """When every slot is done, turn the verdicts into approved / rejected / adjudication.

    The caller holds the candidate's row lock.
    """
    if candidate.slots.exclude(state=ReviewSlot.DONE).exists():
        return
    verdicts = list(verdicts_standing(candidate=candidate))
    if not verdicts:
        return
    now = timezone.now()
    if all(d.action == REJECT for d in verdicts):
        _dequeue(candidate, status=REJECTED, decided_at=now)
        return
    finals = {(d.instruction.strip(), d.response.strip()) for d in verdicts}
    if any(d.action == REJECT for d in verdicts) or len(finals) > 1:
        _dequeue(candidate, status=ADJUDICATION)
        return
    _approve_version(candidate, verdicts[0], decided_at=now)


def _approve_version(candidate: Candidate, source: Decision, **fields) -> None:
    """Approve with `source`'s texts (applied revisions for what changed)."""
    changed = [f for f in EDITABLE_FIELDS if getattr(source, f) != getattr(candidate, f)]
    updates = dict(fields)
    for name in changed:
        updates[name] = getattr(source, name)
    if changed:
        updates["edited"] = True
    _dequeue(candidate, status=APPROVED, **updates)
    Revision.objects.bulk_create(
        [
            Revision(candidate=candidate, field=name, text=getattr(candidate, name),
                     author=source.reviewer, candidate_version=candidate.version)
            for name in changed
        ]
    )


def draft_save(*, candidate_id: int, user, version: int, instruction: str, response: str) -> Draft:
    """Autosave of an edit in progress; renews the claim. Refused if the candidate moved on."""
    with transaction.atomic():
        candidate = _locked(candidate_id)
        _check_version(candidate, version)
        slot = _held_slot(candidate, user)
        claims.claim_renew(slot=slot)
        draft, _ = Draft.objects.update_or_create(
            candidate=candidate, reviewer=user,
            defaults={"instruction": instruction, "response": response, "base_version": version},
        )
    return draft


def draft_discard(*, candidate_id: int, user) -> None:
    Draft.objects.filter(candidate_id=candidate_id, reviewer=user).delete()


def decision_undo_last(*, project: Project, user, idempotency_key: str | None = None) -> Decision:
    """Undo the user's latest decision in the project (recorded as an "undo" decision).

    The candidate comes back to the user under a fresh claim; a status it reached through that
    decision is reverted. Refused once an adjudicator has ruled or another reviewer decided after.
    """
    earlier = _replay(idempotency_key, user)
    if earlier is not None:
        return earlier
    last = (
        Decision.objects.filter(
            reviewer=user, candidate__project=project, action__in=REVIEW_ACTIONS,
            undone_by__isnull=True,
        )
        .order_by("-id")
        .first()
    )
    if last is None:
        raise Conflict("Nothing to undo.")
    with transaction.atomic():
        candidate = _locked(last.candidate_id)
        # What others decided since, and still stands (an undone decision no longer counts).
        later = candidate.decisions.filter(id__gt=last.id, undone_by__isnull=True).exclude(
            action=UNDO
        ).exclude(reviewer=user)
        if later.exists():
            raise Conflict("Someone decided on this candidate after you; it cannot be undone.",
                           candidate=candidate)
        claims.claims_release_for_user(user=user, project=project)
        if last.action == SKIP:
            claims.claim_candidate(candidate=candidate, user=user)
        else:
            _reopen_slot(candidate, user)
        if candidate.status != PENDING:
            before = text_at_version(candidate=candidate, version=last.candidate_version)
            restore = {f: t for f, t in before.items() if t != getattr(candidate, f)}
            # Back in the queue with all its slots (a flag closed the others' slots).
            _requeue(candidate, **restore)
            Revision.objects.bulk_create(
                [Revision(candidate=candidate, field=f, text=t, author=user,
                          candidate_version=candidate.version) for f, t in restore.items()]
            )
        return Decision.objects.create(
            candidate=candidate, reviewer=user, action=UNDO, undoes=last,
            candidate_version=candidate.version, idempotency_key=idempotency_key or None,
        )


def _reopen_slot(candidate: Candidate, user) -> None:
    now = timezone.now()
    ReviewSlot.objects.filter(candidate=candidate, reviewer=user).update(
        state=ReviewSlot.CLAIMED, claimed_at=now, done_at=None,
        claim_expires_at=claims._expiry(now),
    )


def candidate_adjudicate(
    *,
    candidate_id: int,
    user,
    version: int,
    choice: int | None,
    reason: str = "",
    comment: str = "",
    idempotency_key: str | None = None,
) -> Decision:
    """The adjudicator's final word: approve the version of decision `choice`, or reject."""
    if choice is None and reason not in REASON_KEYS:
        raise InvalidInput(f"To reject, choose a reason: {_reason_labels()}.")
    earlier = _replay(idempotency_key, user)
    if earlier is not None:
        return earlier
    with transaction.atomic():
        candidate = _locked(candidate_id)
        _check_version(candidate, version)
        if candidate.status not in (ADJUDICATION, FLAGGED):
            raise Conflict(f"This candidate is {candidate.status}, not awaiting adjudication.",
                           candidate=candidate)
        now = timezone.now()
        decision = Decision(
            candidate=candidate, reviewer=user, action=ADJUDICATE, comment=comment.strip(),
            candidate_version=candidate.version, idempotency_key=idempotency_key or None,
        )
        if choice is None:
            decision.reason = reason
            _dequeue(candidate, status=REJECTED, decided_at=now)
        else:
            chosen = candidate.decisions.filter(pk=choice, action__in=(APPROVE, EDIT)).first()
            if chosen is None:
                raise InvalidInput("That is not one of the approved versions of this candidate.")
            decision.instruction, decision.response = chosen.instruction, chosen.response
            decision.system_note = f"chose the version of decision {chosen.pk}"
            _approve_version(candidate, chosen, decided_at=now)
        decision.save()
        return decision


def candidate_overturn_auto_reject(*, candidate_id: int, user, version: int) -> ReviewSlot:
    """A reviewer reopens a system-rejected candidate for review and claims it."""
    with transaction.atomic():
        candidate = _locked(candidate_id)
        _check_version(candidate, version)
        auto = system_rejection(candidate)
        if auto is None:
            raise Conflict("Only an automatic rejection can be overturned here.", candidate=candidate)
        _requeue(candidate)
        AuditEntry.objects.create(
            project=candidate.project, user=user, action="overturn_auto_reject",
            details={"candidate": candidate.pk, "decision": auto.pk, "note": auto.system_note},
        )
    slot = claims.claim_candidate(candidate=candidate, user=user)
    if slot is None:
        raise Conflict("No review slot is free on this candidate.", candidate=candidate)
    return slot
