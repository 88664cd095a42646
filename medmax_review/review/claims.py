"""The review queue: claims (leases) on ReviewSlot rows.

A slot is `open`, `claimed` (by one reviewer until `claim_expires_at`) or `done`. Every action
and draft save renews the lease; skipping, signing out or letting it expire releases it. What a
reviewer may claim is read in selectors (claimable_slots, claim_held); this module writes claims.
"""

from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from medmax_review.projects.models import Project
from medmax_review.review.models import PENDING, Candidate, ReviewSlot
from medmax_review.review.selectors import claim_held, claimable_slots

# SQLite has no SKIP LOCKED: a lost race just means trying the next slot.
_SQLITE_RETRIES = 5
_PICK_WINDOW = 20


def _expiry(now=None):
    return (now or timezone.now()) + timedelta(seconds=settings.CLAIM_TTL_SECONDS)


def claims_release_expired(*, project: Project) -> int:
    """Reopen the project's claims whose lease ran out (conditional UPDATE: safe to race)."""
    return ReviewSlot.objects.filter(
        project=project, state=ReviewSlot.CLAIMED, claim_expires_at__lt=timezone.now()
    ).update(state=ReviewSlot.OPEN, reviewer=None, claimed_at=None, claim_expires_at=None)


def claims_release_for_user(*, user, project: Project | None = None) -> int:
    """Give back every claim the user holds (sign-out), or those in one project."""
    slots = ReviewSlot.objects.filter(reviewer=user, state=ReviewSlot.CLAIMED)
    if project is not None:
        slots = slots.filter(project=project)
    return slots.update(state=ReviewSlot.OPEN, reviewer=None, claimed_at=None, claim_expires_at=None)


def claim_release(*, slot: ReviewSlot) -> bool:
    return bool(
        ReviewSlot.objects.filter(pk=slot.pk, state=ReviewSlot.CLAIMED, reviewer=slot.reviewer_id)
        .update(state=ReviewSlot.OPEN, reviewer=None, claimed_at=None, claim_expires_at=None)
    )


def claim_renew(*, slot: ReviewSlot) -> bool:
    """Push the lease forward; False if the claim is no longer the reviewer's."""
    expires = _expiry()
    renewed = ReviewSlot.objects.filter(
        pk=slot.pk, state=ReviewSlot.CLAIMED, reviewer=slot.reviewer_id
    ).update(claim_expires_at=expires)
    slot.claim_expires_at = expires
    return bool(renewed)


def claim_next(*, project: Project, user) -> Candidate | None:
    """Hand the user their claimed candidate, or claim the highest-priority one they may review."""
    held = claim_held(project=project, user=user)
    if held is not None:
        claim_renew(slot=held)
        return held.candidate
    claims_release_expired(project=project)
    if connection.vendor == "postgresql":
        slot = _claim_skip_locked(project=project, user=user)
    else:
        slot = _claim_conditional(project=project, user=user)
    return slot.candidate if slot else None


def _claim_skip_locked(*, project: Project, user) -> ReviewSlot | None:
    with transaction.atomic():
        # Two reviewers reading the same top open slot would both claim it. FOR UPDATE locks
        # the row we pick; SKIP LOCKED makes everyone else pass over it to the next slot instead
        # of waiting for our commit, so concurrent reviewers neither queue up nor collide.
        slot = (
            claimable_slots(project=project, user=user)
            .select_related("candidate")
            .select_for_update(skip_locked=True, of=("self",))
            .first()
        )
        if slot is None:
            return None
        now = timezone.now()
        slot.state, slot.reviewer, slot.claimed_at = ReviewSlot.CLAIMED, user, now
        slot.claim_expires_at = _expiry(now)
        slot.save(update_fields=["state", "reviewer", "claimed_at", "claim_expires_at"])
    return slot


def _claim_conditional(*, project: Project, user) -> ReviewSlot | None:
    for _ in range(_SQLITE_RETRIES):
        ids = list(claimable_slots(project=project, user=user).values_list("id", flat=True)[:_PICK_WINDOW])
        if not ids:
            return None
        for slot_id in ids:
            if slot_claim_by_id(slot_id=slot_id, user=user):
                return ReviewSlot.objects.select_related("candidate").get(pk=slot_id)
    return None


def slot_claim_by_id(*, slot_id: int, user) -> bool:
    """Claim this slot only if it is still open (exactly one row changes or none)."""
    now = timezone.now()
    return bool(
        ReviewSlot.objects.filter(pk=slot_id, state=ReviewSlot.OPEN).update(
            state=ReviewSlot.CLAIMED, reviewer=user, claimed_at=now, claim_expires_at=_expiry(now)
        )
    )


def claim_candidate(*, candidate: Candidate, user) -> ReviewSlot | None:
    """Claim a slot of this particular candidate (opened from its URL), if one is free for the user.

    The user's other claims in the project go back to the queue: one claim at a time.
    """
    if candidate.status != PENDING:
        return None
    mine = ReviewSlot.objects.filter(candidate=candidate, reviewer=user).first()
    if mine is not None:
        if mine.state == ReviewSlot.CLAIMED:
            claim_renew(slot=mine)
            return mine
        return None
    claims_release_expired(project=candidate.project)
    for slot_id in ReviewSlot.objects.filter(candidate=candidate, state=ReviewSlot.OPEN).values_list(
        "id", flat=True
    ):
        claims_release_for_user(user=user, project=candidate.project)
        if slot_claim_by_id(slot_id=slot_id, user=user):
            return ReviewSlot.objects.get(pk=slot_id)
    return None
