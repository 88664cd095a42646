from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from medmax_review.review import claims, services
from medmax_review.review.models import (
    ADJUDICATION,
    APPROVED,
    FLAGGED,
    PENDING,
    REJECTED,
    UNDO,
    Candidate,
    Decision,
    Draft,
    ReviewSlot,
    Revision,
)
from medmax_review.review.textdiff import reasoned_segments, word_diff

pytestmark = pytest.mark.django_db


def decide(candidate, user, action, **kw):
    candidate.refresh_from_db()
    kw.setdefault("version", candidate.version)
    return services.decision_record(candidate_id=candidate.pk, user=user, action=action, **kw)


# --- claims


def test_candidate_peek_next_is_what_claim_next_hands_out_next(project, reviewer, make_candidates):
    from medmax_review.review import selectors

    first, second, third = make_candidates(3, priorities=[0.9, 0.1, 0.5])
    assert claims.claim_next(project=project, user=reviewer) == first
    peeked = selectors.candidate_peek_next(project=project, user=reviewer, exclude_id=first.pk)
    assert peeked == third
    # Read only: the peeked candidate's slot stays open, the reviewer holds one claim.
    assert ReviewSlot.objects.get(candidate=third).state == ReviewSlot.OPEN
    assert ReviewSlot.objects.filter(reviewer=reviewer, state=ReviewSlot.CLAIMED).count() == 1
    decide(first, reviewer, "approve")
    assert claims.claim_next(project=project, user=reviewer) == peeked


def test_candidate_peek_next_follows_claim_visibility(project, reviewer, reviewer2, make_candidates):
    from medmax_review.review import selectors

    (current,) = make_candidates(1, priorities=[0.9])
    (secret,) = make_candidates(1, priorities=[0.8], credential=True)
    taken, skipped, last = make_candidates(3, priorities=[0.7, 0.6, 0.1])
    assert claims.claim_candidate(candidate=taken, user=reviewer2) is not None
    assert claims.claim_next(project=project, user=reviewer) == current
    decide(current, reviewer, "skip")
    assert claims.claim_candidate(candidate=skipped, user=reviewer) is not None
    decide(skipped, reviewer, "skip")
    # Not the credentialed one, not reviewer2's claim, not the two skipped ones.
    assert selectors.candidate_peek_next(project=project, user=reviewer) == last
    assert selectors.candidate_peek_next(project=project, user=reviewer, exclude_id=last.pk) is None


@pytest.mark.parametrize(("order", "index"), [
    ("likely_bad", "slot_queue_risk_idx"), ("uncertain", "slot_queue_uncertain_idx"),
    ("scores", "slot_queue_idx"),
])
def test_candidate_peek_next_plan_uses_slot_queue_index(project, reviewer, make_candidates,
                                                        order, index):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from medmax_review.review import selectors

    if connection.vendor != "postgresql":
        pytest.skip("the partial queue index is planned by PostgreSQL")
    project.queue_order = order
    project.save(update_fields=["queue_order"])
    current, _ = make_candidates(2, priorities=[0.9, 0.5])
    with CaptureQueriesContext(connection) as queries:
        selectors.candidate_peek_next(project=project, user=reviewer, exclude_id=current.pk)
    (sql,) = [q["sql"] for q in queries.captured_queries]
    with connection.cursor() as cursor:
        # A handful of test rows make any plan cheap; forbid the table scan and the sort so the
        # planner must walk an index that already yields queue order: the slot queue index.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert f"{index} on" in plan, plan
    assert "Limit" in plan.splitlines()[0], plan


def test_claim_next_highest_priority_first(project, reviewer, make_candidates):
    low, high, mid = make_candidates(3, priorities=[0.1, 0.9, 0.5])
    assert claims.claim_next(project=project, user=reviewer) == high
    slot = ReviewSlot.objects.get(candidate=high)
    assert slot.state == ReviewSlot.CLAIMED and slot.reviewer == reviewer
    assert slot.claim_expires_at > timezone.now()


def test_claim_next_returns_held_claim(project, reviewer, make_candidates):
    make_candidates(3, priorities=[0.1, 0.9, 0.5])
    first = claims.claim_next(project=project, user=reviewer)
    assert claims.claim_next(project=project, user=reviewer) == first
    assert ReviewSlot.objects.filter(reviewer=reviewer, state=ReviewSlot.CLAIMED).count() == 1


def test_claim_next_two_reviewers_get_different_candidates(project, reviewer, reviewer2, make_candidates):
    make_candidates(2)
    a = claims.claim_next(project=project, user=reviewer)
    b = claims.claim_next(project=project, user=reviewer2)
    assert a is not None and b is not None and a != b


def test_claim_next_credentialed_only_for_credentialed_users(project, reviewer, admin_user, make_candidates):
    (cred,) = make_candidates(1, credential=True)
    assert claims.claim_next(project=project, user=reviewer) is None
    assert claims.claim_next(project=project, user=admin_user) == cred


def test_claim_next_releases_expired_claims(project, reviewer, reviewer2, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    assert claims.claim_next(project=project, user=reviewer2) is None
    ReviewSlot.objects.filter(candidate=c).update(claim_expires_at=timezone.now() - timedelta(seconds=1))
    assert claims.claim_next(project=project, user=reviewer2) == c


def test_claim_renewed_by_draft_save(project, reviewer, make_candidates, settings):
    settings.CLAIM_TTL_SECONDS = 60
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    ReviewSlot.objects.filter(candidate=c).update(claim_expires_at=timezone.now() + timedelta(seconds=5))
    services.draft_save(candidate_id=c.pk, user=reviewer, version=c.version, instruction="i", response="r")
    assert ReviewSlot.objects.get(candidate=c).claim_expires_at > timezone.now() + timedelta(seconds=50)


def test_claim_released_on_sign_out(client, project, reviewer, reviewer2, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    # The real sign-out: the form in the top bar posts to the logout view.
    client.force_login(reviewer)
    assert client.post(reverse("logout")).status_code == 302
    assert ReviewSlot.objects.get(candidate=c).state == ReviewSlot.OPEN
    assert claims.claim_next(project=project, user=reviewer2) == c


# --- actions


def test_approve_single_review_approves(project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    decide(c, reviewer, "approve")
    c.refresh_from_db()
    assert c.status == APPROVED and c.version == 2 and c.decided_at is not None
    assert ReviewSlot.objects.get(candidate=c).state == ReviewSlot.DONE


def test_edit_applies_text_and_keeps_revisions(project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    decide(c, reviewer, "edit", instruction=c.instruction, response="The right lung has an opacity.")
    c.refresh_from_db()
    assert c.status == APPROVED and c.edited and c.response == "The right lung has an opacity."
    revs = list(Revision.objects.filter(candidate=c, field="response").values_list("text", "author", "applied"))
    assert revs == [
        ("The left lung is clear.", None, True),
        ("The right lung has an opacity.", reviewer.pk, False),
        ("The right lung has an opacity.", reviewer.pk, True),
    ]


def test_edit_empty_response_is_refused(project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    with pytest.raises(services.InvalidInput, match="response"):
        decide(c, reviewer, "edit", instruction="x", response="  ")


def test_reject_needs_a_known_reason(project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    with pytest.raises(services.InvalidInput, match="reason"):
        decide(c, reviewer, "reject", reason="bad vibes")
    decide(c, reviewer, "reject", reason="laterality", comment=" says left ")
    c.refresh_from_db()
    assert c.status == REJECTED
    d = Decision.objects.get(candidate=c)
    assert (d.reason, d.comment) == ("laterality", "says left")


def test_skip_releases_and_is_not_handed_back(project, reviewer, reviewer2, make_candidates):
    first, second = make_candidates(2, priorities=[0.9, 0.1])
    assert claims.claim_next(project=project, user=reviewer) == first
    decide(first, reviewer, "skip")
    assert ReviewSlot.objects.get(candidate=first).state == ReviewSlot.OPEN
    assert claims.claim_next(project=project, user=reviewer) == second
    assert claims.claim_next(project=project, user=reviewer2) == first


def test_flag_holds_candidate_for_discussion(project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    decide(c, reviewer, "flag", comment="unclear image")
    c.refresh_from_db()
    assert c.status == FLAGGED


def test_decision_on_stale_version_is_a_conflict(project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    Candidate.objects.filter(pk=c.pk).update(version=5)
    with pytest.raises(services.Conflict):
        services.decision_record(candidate_id=c.pk, user=reviewer, action="approve", version=1)
    c.refresh_from_db()
    assert c.status == PENDING and not Decision.objects.filter(candidate=c).exists()


def test_decision_without_claim_when_others_hold_it_is_a_conflict(project, reviewer, reviewer2, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    with pytest.raises(services.Conflict):
        decide(c, reviewer2, "approve")


def test_double_submit_is_recorded_once(project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    first = decide(c, reviewer, "approve", version=1, idempotency_key="k-123")
    again = services.decision_record(
        candidate_id=c.pk, user=reviewer, action="approve", version=1, idempotency_key="k-123"
    )
    assert again.replayed and again.decision.pk == first.decision.pk
    assert Decision.objects.filter(candidate=c).count() == 1


def test_idempotency_key_of_another_user_is_refused(project, reviewer, reviewer2, make_candidates):
    a, b = make_candidates(2)
    claims.claim_next(project=project, user=reviewer)
    claims.claim_next(project=project, user=reviewer2)
    held = ReviewSlot.objects.get(reviewer=reviewer, state="claimed").candidate
    decide(held, reviewer, "approve", idempotency_key="shared")
    other = ReviewSlot.objects.get(reviewer=reviewer2, state="claimed").candidate
    with pytest.raises(services.InvalidInput):
        decide(other, reviewer2, "approve", idempotency_key="shared")


# --- undo


def test_undo_approve_reopens_for_same_reviewer(project, reviewer, make_candidates):
    first, second = make_candidates(2, priorities=[0.9, 0.1])
    claims.claim_next(project=project, user=reviewer)
    decide(first, reviewer, "approve")
    assert claims.claim_next(project=project, user=reviewer) == second
    undo = services.decision_undo_last(project=project, user=reviewer)
    first.refresh_from_db()
    assert undo.action == UNDO and undo.undoes.action == "approve" and undo.candidate == first
    assert first.status == PENDING and first.version == 3
    # The reviewer holds the undone candidate again; the pre-claimed next one went back.
    assert claims.claim_next(project=project, user=reviewer) == first
    assert ReviewSlot.objects.get(candidate=second).state == ReviewSlot.OPEN
    decide(first, reviewer, "reject", reason="hallucination")
    first.refresh_from_db()
    assert first.status == REJECTED
    assert list(Decision.objects.filter(candidate=first).values_list("action", flat=True)) == [
        "approve", "undo", "reject",
    ]


def test_undo_edit_restores_model_text(project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    decide(c, reviewer, "edit", instruction=c.instruction, response="Rewritten.")
    services.decision_undo_last(project=project, user=reviewer)
    c.refresh_from_db()
    assert c.status == PENDING and c.response == "The left lung is clear."


def test_undo_with_nothing_to_undo_is_a_conflict(project, reviewer):
    with pytest.raises(services.Conflict, match="Nothing to undo"):
        services.decision_undo_last(project=project, user=reviewer)


def test_undo_after_adjudication_is_refused(project, two_reviews, reviewer, reviewer2, adjudicator, make_candidates):
    (c,) = make_candidates(1)
    for user, action in ((reviewer, "approve"), (reviewer2, "reject")):
        claims.claim_next(project=project, user=user)
        decide(c, user, action, reason="other")
    c.refresh_from_db()
    services.candidate_adjudicate(candidate_id=c.pk, user=adjudicator, version=c.version, choice=None, reason="other")
    with pytest.raises(services.Conflict):
        services.decision_undo_last(project=project, user=reviewer2)


# --- drafts


def test_draft_save_and_restore(project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    services.draft_save(candidate_id=c.pk, user=reviewer, version=1, instruction="i", response="half typed")
    services.draft_save(candidate_id=c.pk, user=reviewer, version=1, instruction="i", response="fully typed")
    draft = Draft.objects.get(candidate=c, reviewer=reviewer)
    assert draft.response == "fully typed"
    from medmax_review.review.selectors import review_screen

    screen = review_screen(candidate=c, user=reviewer)
    assert screen["draft"].response == "fully typed"
    assert screen["draft_diff"]["response"] == [("del", "The left lung is clear."), ("ins", "fully typed")]
    assert screen["draft_diff"]["changed"]


def test_draft_save_on_changed_candidate_is_a_conflict(project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    Candidate.objects.filter(pk=c.pk).update(version=2)
    with pytest.raises(services.Conflict):
        services.draft_save(candidate_id=c.pk, user=reviewer, version=1, instruction="", response="x")
    assert not Draft.objects.exists()


def test_draft_removed_once_decided(project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    services.draft_save(candidate_id=c.pk, user=reviewer, version=1, instruction="i", response="r")
    decide(c, reviewer, "edit", instruction="i", response="r")
    assert not Draft.objects.exists()


# --- N reviews, blind, outcome, adjudication


def test_two_reviews_hand_candidate_to_two_reviewers_blind(project, two_reviews, reviewer, reviewer2, make_candidates):
    from medmax_review.review.selectors import review_screen

    (c,) = make_candidates(1)
    assert claims.claim_next(project=project, user=reviewer) == c
    decide(c, reviewer, "edit", instruction=c.instruction, response="Edited by rita.")
    c.refresh_from_db()
    assert c.status == PENDING and c.response == "The left lung is clear."
    assert claims.claim_next(project=project, user=reviewer) is None
    assert claims.claim_next(project=project, user=reviewer2) == c
    # rob sees the model's text and none of rita's verdict until he decides.
    screen = review_screen(candidate=c, user=reviewer2)
    assert screen["other_verdicts"] == [] and screen["my_verdict"] is None
    decide(c, reviewer2, "approve")
    screen = review_screen(candidate=c, user=reviewer2)
    assert [d.reviewer for d in screen["other_verdicts"]] == [reviewer]


def test_two_identical_approvals_approve(project, two_reviews, reviewer, reviewer2, make_candidates):
    (c,) = make_candidates(1)
    for user in (reviewer, reviewer2):
        claims.claim_next(project=project, user=user)
        decide(c, user, "edit", instruction=c.instruction, response="Same fix.")
    c.refresh_from_db()
    assert c.status == APPROVED and c.response == "Same fix."


def test_two_rejections_reject(project, two_reviews, reviewer, reviewer2, make_candidates):
    (c,) = make_candidates(1)
    for user in (reviewer, reviewer2):
        claims.claim_next(project=project, user=user)
        decide(c, user, "reject", reason="off_topic")
    c.refresh_from_db()
    assert c.status == REJECTED


def test_different_edits_go_to_adjudication_then_final(project, two_reviews, reviewer, reviewer2, adjudicator, make_candidates):
    from medmax_review.review.selectors import adjudication_candidates, adjudication_versions

    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    decide(c, reviewer, "edit", instruction=c.instruction, response="Right lung opacity.")
    claims.claim_next(project=project, user=reviewer2)
    decide(c, reviewer2, "approve")
    c.refresh_from_db()
    assert c.status == ADJUDICATION
    assert list(adjudication_candidates(project=project, user=adjudicator)) == [c]
    versions = adjudication_versions(candidate=c)
    assert [v["decision"].reviewer for v in versions] == [reviewer, reviewer2]
    rita = versions[0]["decision"]
    decision = services.candidate_adjudicate(
        candidate_id=c.pk, user=adjudicator, version=c.version, choice=rita.pk
    )
    c.refresh_from_db()
    assert decision.action == "adjudicate" and c.status == APPROVED
    assert c.response == "Right lung opacity."
    with pytest.raises(services.Conflict):
        services.candidate_adjudicate(candidate_id=c.pk, user=adjudicator, version=c.version, choice=rita.pk)


def test_approve_against_reject_goes_to_adjudication(project, two_reviews, reviewer, reviewer2, adjudicator, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    decide(c, reviewer, "approve")
    claims.claim_next(project=project, user=reviewer2)
    decide(c, reviewer2, "reject", reason="laterality")
    c.refresh_from_db()
    assert c.status == ADJUDICATION
    services.candidate_adjudicate(
        candidate_id=c.pk, user=adjudicator, version=c.version, choice=None, reason="laterality"
    )
    c.refresh_from_db()
    assert c.status == REJECTED


def test_adjudicate_on_stale_version_is_a_conflict(project, reviewer, adjudicator, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    decide(c, reviewer, "flag")
    with pytest.raises(services.Conflict):
        services.candidate_adjudicate(candidate_id=c.pk, user=adjudicator, version=1, choice=None, reason="other")


def test_system_rejection_can_be_overturned(project, reviewer, make_candidates):
    (c,) = make_candidates(1)
    Candidate.objects.filter(pk=c.pk).update(status=REJECTED, version=2)
    ReviewSlot.objects.filter(candidate=c).update(state=ReviewSlot.DONE)
    Decision.objects.create(candidate=c, action="reject", reason="formatting", system_note="format score 0.1", candidate_version=1)
    c.refresh_from_db()
    assert claims.claim_next(project=project, user=reviewer) is None
    slot = services.candidate_overturn_auto_reject(candidate_id=c.pk, user=reviewer, version=2)
    assert slot.reviewer == reviewer and slot.state == ReviewSlot.CLAIMED
    decide(c, reviewer, "approve")
    c.refresh_from_db()
    assert c.status == APPROVED


def test_reviewer_rejection_cannot_be_overturned(project, reviewer, reviewer2, make_candidates):
    (c,) = make_candidates(1)
    claims.claim_next(project=project, user=reviewer)
    decide(c, reviewer, "reject", reason="other")
    c.refresh_from_db()
    with pytest.raises(services.Conflict):
        services.candidate_overturn_auto_reject(candidate_id=c.pk, user=reviewer2, version=c.version)


# --- text helpers


def test_word_diff_marks_changed_words():
    assert word_diff("the left lung", "the right lung") == [
        ("eq", "the "), ("del", "left"), ("ins", "right"), ("eq", " lung"),
    ]
    assert word_diff("The left lung is clear.", "A b c") == [
        ("del", "The left lung is clear."), ("ins", "A b c"),
    ]
    assert "".join(t for op, t in word_diff(" a b  c", "a x c") if op != "del") == "a x c"
    assert "".join(t for op, t in word_diff(" a b  c", "a x c") if op != "ins") == " a b  c"


def test_reasoned_segments_merge_and_clip_spans_keeping_each_reason():
    marked = ("marked",)  # a span that gave no reason
    assert reasoned_segments("abcdefgh", [[1, 3], [2, 5], [7, 99], ["x"]]) == [
        ("a", ()), ("bcde", marked), ("fg", ()), ("h", marked),
    ]
    assert reasoned_segments("the left lung", [[4, 8, "side"], [4, 13, "organ"]]) == [
        ("the ", ()), ("left", ("side", "organ")), (" lung", ("organ",)),
    ]


def test_claim_conditional_update_never_takes_a_claimed_slot(project, reviewer, reviewer2, make_candidates):
    # The portable path (SQLite): claim by `UPDATE ... WHERE state = 'open'`, retry on a lost race.
    first, second = make_candidates(2, priorities=[0.9, 0.1])
    slot = ReviewSlot.objects.get(candidate=first)
    assert claims.slot_claim_by_id(slot_id=slot.pk, user=reviewer)
    assert not claims.slot_claim_by_id(slot_id=slot.pk, user=reviewer2)
    got = claims._claim_conditional(project=project, user=reviewer2)
    assert got.candidate == second and got.reviewer == reviewer2
    assert claims._claim_conditional(project=project, user=reviewer2) is None


def test_queue_counts_capped_and_today(project, reviewer, make_candidates, monkeypatch):
    from medmax_review.review import selectors

    monkeypatch.setattr(selectors, "COUNT_CAP", 2)
    make_candidates(4)
    assert selectors.queue_counts(project=project, user=reviewer) == {"left": "2+", "today": 0}
    monkeypatch.setattr(selectors, "COUNT_CAP", 10)
    c = claims.claim_next(project=project, user=reviewer)
    decide(c, reviewer, "approve")
    assert selectors.queue_counts(project=project, user=reviewer) == {"left": 3, "today": 1}
