"""Taking candidates out of the queue and back (review.queue), and the bugs it closes: an undone
decision that kept its candidate from the reviewer, and claims that outlived their candidate."""

import pytest

from medmax_review.review import bulk, claims, queue, selectors, services
from medmax_review.review.browse_selectors import BrowseFilters
from medmax_review.review.models import (
    ADJUDICATION,
    FLAGGED,
    PENDING,
    REJECTED,
    Candidate,
    Decision,
    ReviewSlot,
)
from medmax_review.scoring.services import _auto_reject

pytestmark = pytest.mark.django_db


def decide(candidate, user, action, **kw):
    candidate.refresh_from_db()
    kw.setdefault("version", candidate.version)
    kw.setdefault("reason", "other")
    return services.decision_record(candidate_id=candidate.pk, user=user, action=action, **kw)


def unfinished(candidate) -> int:
    return candidate.slots.exclude(state=ReviewSlot.DONE).count()


# --- bug (b): undo twice


def test_undo_twice_leaves_the_candidate_in_the_reviewers_queue(project, reviewer, make_candidates):
    # given a reviewer who approved one candidate and flagged the next
    first, second = make_candidates(2, priorities=[0.9, 0.1])
    assert claims.claim_next(project=project, user=reviewer) == first
    decide(first, reviewer, "approve")
    assert claims.claim_next(project=project, user=reviewer) == second
    decide(second, reviewer, "flag")
    # when they undo twice (the flag, then the approval) and carry on
    services.decision_undo_last(project=project, user=reviewer)
    services.decision_undo_last(project=project, user=reviewer)
    assert claims.claim_next(project=project, user=reviewer) == first
    decide(first, reviewer, "approve")
    # then the flagged-and-undone candidate is handed to them again, not orphaned
    assert claims.claim_next(project=project, user=reviewer) == second


def test_undo_of_a_skip_makes_the_candidate_offerable_again(project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    decide(c, reviewer, "skip")
    assert claims.claim_next(project=project, user=reviewer) is None
    services.decision_undo_last(project=project, user=reviewer)
    claims.claims_release_for_user(user=reviewer)
    assert claims.claim_next(project=project, user=reviewer) == c


def test_undo_is_not_blocked_by_a_later_decision_that_was_undone(
    project, two_reviews, reviewer, reviewer2, make_candidates
):
    (c,) = make_candidates(1)
    for user in (reviewer, reviewer2):
        claims.claim_next(project=project, user=user)
        decide(c, user, "approve")
    services.decision_undo_last(project=project, user=reviewer2)
    undo = services.decision_undo_last(project=project, user=reviewer)
    assert undo.undoes.reviewer == reviewer and undo.undoes.action == "approve"
    c.refresh_from_db()
    assert c.status == PENDING and unfinished(c) == 2


# --- bug (c): claims that outlive their candidate


@pytest.mark.parametrize("how", ["auto_reject", "bulk_reject", "flag_by_other"])
def test_candidate_taken_out_of_the_queue_loses_its_claims(
    project, two_reviews, reviewer, reviewer2, admin_user, make_candidates, how
):
    # given a candidate (two reviews) that one reviewer holds, and other work waiting
    held, other = make_candidates(
        2, priorities=[0.9, 0.1], scores={"format": {"value": 0.1, "band": "poor", "evidence": []},
                                          "grounding": {"value": 0.9, "band": "good", "evidence": []}},
    )
    Candidate.objects.filter(pk=other.pk).update(scores={})
    assert claims.claim_next(project=project, user=reviewer) == held
    # when the system, an admin or another reviewer takes it out of the queue
    if how == "auto_reject":
        project.auto_reject_thresholds = {"format": 0.5}
        project.save(update_fields=["auto_reject_thresholds"])
        _auto_reject([Candidate.objects.select_related("project").get(pk=held.pk)])
    elif how == "bulk_reject":
        request = bulk.BulkRequest(action=bulk.REJECT_BELOW, filters=BrowseFilters(),
                                   score_name="format", threshold=0.5)
        bulk.bulk_run(project=project, user=admin_user, request=request)
    else:
        assert claims.claim_next(project=project, user=reviewer2) == held
        decide(held, reviewer2, "flag")
    # then no slot of it is open or claimed, and the holder is handed the other work instead
    held.refresh_from_db()
    assert held.status in (REJECTED, FLAGGED) and unfinished(held) == 0
    assert claims.claim_next(project=project, user=reviewer) == other


def test_claim_held_ignores_a_claim_on_a_candidate_no_longer_pending(project, reviewer, make_candidates):
    # A claim that escaped the queue service (older data) is not handed out read-only.
    stale, waiting = make_candidates(2, priorities=[0.9, 0.1])
    claims.claim_next(project=project, user=reviewer)
    Candidate.objects.filter(pk=stale.pk).update(status=REJECTED)
    assert selectors.claim_held(project=project, user=reviewer) is None
    assert claims.claim_next(project=project, user=reviewer) == waiting
    assert claims.claim_candidate(candidate=Candidate.objects.get(pk=stale.pk), user=reviewer) is None


def test_undo_of_a_flag_gives_back_the_other_reviewers_slots(project, two_reviews, reviewer, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    decide(c, reviewer, "flag")
    assert c.slots.count() == 1  # the flagger's, done; the open one was closed
    services.decision_undo_last(project=project, user=reviewer)
    c.refresh_from_db()
    assert c.status == PENDING
    assert sorted(c.slots.values_list("state", flat=True)) == [ReviewSlot.CLAIMED, ReviewSlot.OPEN]


def test_adjudication_leaves_no_slot_done_by_a_reviewer_who_did_not_review(
    project, two_reviews, reviewer, reviewer2, adjudicator, make_candidates
):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    decide(c, reviewer, "flag")
    c.refresh_from_db()
    services.candidate_adjudicate(candidate_id=c.pk, user=adjudicator, version=c.version,
                                  choice=None, reason="other")
    assert list(c.slots.values_list("reviewer", "state")) == [(reviewer.pk, ReviewSlot.DONE)]


# --- the queue service itself


def test_candidates_dequeue_refuses_pending(project, make_candidates):
    (c,) = make_candidates(1)
    with pytest.raises(ValueError):
        queue.candidates_dequeue(candidate_ids=[c.pk], status=PENDING)


def test_slots_create_tops_up_to_the_number_required(project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    decide(c, reviewer, "skip")
    # one slot exists (open again); asking for three adds two, asking again adds none
    assert queue.slots_create(project=project, candidates=[c], required=3) == 2
    assert queue.slots_create(project=project, candidates=[c], required=3) == 0
    assert sorted(c.slots.values_list("index", flat=True)) == [0, 1, 2]


def test_candidates_system_reject_records_a_system_decision(project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    (decision,) = queue.candidates_system_reject(candidates=[c], note="format < 0.2", reason="formatting")
    c.refresh_from_db()
    assert (decision.reviewer, decision.reason, decision.candidate_version) == (None, "formatting", 1)
    assert (c.status, c.version, unfinished(c)) == (REJECTED, 2, 0) and c.decided_at is not None
    assert selectors.system_rejection(c) == decision


# --- standing verdicts


def test_verdicts_standing_latest_not_undone_reviewers_only(
    project, two_reviews, reviewer, reviewer2, adjudicator, make_candidates
):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    decide(c, reviewer, "approve")
    services.decision_undo_last(project=project, user=reviewer)
    mine = decide(c, reviewer, "reject").decision
    claims.claim_next(project=project, user=reviewer2)
    theirs = decide(c, reviewer2, "approve").decision
    c.refresh_from_db()
    assert c.status == ADJUDICATION
    services.candidate_adjudicate(candidate_id=c.pk, user=adjudicator, version=c.version,
                                  choice=theirs.pk)
    Decision.objects.create(candidate=c, action="reject", system_note="auto", candidate_version=1)
    # the undone approval, the adjudication and the system decision are not verdicts
    assert list(selectors.verdicts_standing(candidate=c)) == [mine, theirs]
    assert list(selectors.verdicts_standing(project=project)) == [mine, theirs]
