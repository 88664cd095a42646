"""The review queue as a state machine: reviewers, the system and an admin act in any order.

Hypothesis drives three reviewers (one with credentialed access) through next / approve / edit /
reject / skip / flag / undo / sign-out / lease expiry, and the system and an admin through
auto-reject, bulk reject, new candidates and "reviews required" changes (applied to the waiting
candidates or not). After every step the queue's promises are checked against the rows
themselves, by rules written here independently of selectors.claimable_slots:

- no slot is held by two reviewers, nobody holds two claims, no slot is open or claimed on a
  candidate out of the queue;
- nobody is handed a candidate they decided (an undone decision excepted), and nobody is handed
  a read-only candidate: claim_next hands out pending work, or None only when none is left;
- after draining the queue no pending candidate is left that an eligible reviewer could review;
- a candidate needing N reviews is decided by N distinct reviewers.

Each example runs in a savepoint rolled back at its end, on PostgreSQL (SKIP LOCKED claims).
"""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from medmax_review.projects.access import has_credentialed_access
from medmax_review.projects.models import Project
from medmax_review.review import bulk, claims, services
from medmax_review.review.browse_selectors import BrowseFilters
from medmax_review.review.models import (
    ADJUDICATION,
    APPROVE,
    APPROVED,
    EDIT,
    FLAG,
    PENDING,
    REJECT,
    REJECTED,
    REVIEW_ACTIONS,
    SKIP,
    UNDO,
    Candidate,
    Decision,
    ReviewSlot,
)
from medmax_review.review.reviews_required import candidates_reviews_required_apply
from medmax_review.review.selectors import candidates_slots_off_target, verdicts_standing
from medmax_review.scoring.services import _auto_reject
from tests.review.review_fixtures import candidates_make

pytestmark = pytest.mark.django_db

MAX_CANDIDATES = 7
TEXTS = ("The right lung is clear.", "Right lung opacity.")


def _score(value: float) -> dict:
    return {"value": value, "band": "good" if value >= 0.5 else "poor", "evidence": []}


class QueueMachine(RuleBasedStateMachine):
    """Set by the test before running: the project id, the reviewers and the admin."""

    project_id: int
    reviewers: list
    admin = None

    def __init__(self):
        super().__init__()
        # A savepoint per example: every example starts from the same empty project.
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        self.project = Project.objects.get(pk=self.project_id)
        self.project.auto_reject_thresholds = {"format": 0.5}
        self.project.save(update_fields=["auto_reject_thresholds"])
        self.screen: dict[int, tuple[int, int] | None] = dict.fromkeys(range(len(self.reviewers)))
        self.required: dict[int, int] = {}

    def teardown(self):
        transaction.set_rollback(True)
        self._atomic.__exit__(None, None, None)

    # ---- reading the rows ---------------------------------------------------------------------

    def _rows(self):
        candidates = {
            cid: (status, credential)
            for cid, status, credential in Candidate.objects.filter(project=self.project)
            .values_list("id", "status", "credential")
        }
        slots = list(
            ReviewSlot.objects.filter(project=self.project).values_list(
                "id", "candidate_id", "state", "reviewer_id", "claim_expires_at"
            )
        )
        decisions = list(
            Decision.objects.filter(candidate__project=self.project)
            .values_list("id", "candidate_id", "reviewer_id", "action", "undoes_id")
        )
        return candidates, slots, decisions

    @staticmethod
    def _standing(decisions, user_id: int) -> set[int]:
        """Candidates this user decided, skipped or flagged and did not undo."""
        undone = {undoes for *_, action, undoes in decisions if action == UNDO}
        return {
            cid for did, cid, rid, action, _ in decisions
            if rid == user_id and action in REVIEW_ACTIONS and did not in undone
        }

    def _claimable(self, user) -> set[int]:
        """Pending candidates with an open slot this user may see, has no slot on, never decided."""
        candidates, slots, decisions = self._rows()
        mine = {cid for _, cid, _, rid, _ in slots if rid == user.pk}
        decided = self._standing(decisions, user.pk)
        sees_all = has_credentialed_access(user)
        return {
            cid for _, cid, state, _, _ in slots
            if state == ReviewSlot.OPEN and candidates[cid][0] == PENDING
            and (sees_all or not candidates[cid][1]) and cid not in mine | decided
        }

    def _slot_counts(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for cid in ReviewSlot.objects.filter(project=self.project).values_list("candidate_id", flat=True):
            counts[cid] = counts.get(cid, 0) + 1
        return counts

    # ---- set-up and the admin -----------------------------------------------------------------

    @initialize(required=st.integers(1, 2), n=st.integers(2, 4), data=st.data())
    def start(self, required, n, data):
        self.project.reviews_required = required
        self.project.save(update_fields=["reviews_required"])
        for _ in range(n):
            self._add(data.draw(st.booleans()), data.draw(st.floats(0, 1)), data.draw(st.floats(0, 1)))

    def _add(self, credential: bool, priority: float, grounding: float) -> None:
        (c,) = candidates_make(
            self.project, 1, credential=credential, priorities=[priority],
            scores={"format": _score(0.9), "grounding": _score(grounding)},
        )
        self.required[c.pk] = self.project.reviews_required

    @precondition(lambda self: len(self.required) < MAX_CANDIDATES)
    @rule(credential=st.booleans(), priority=st.floats(0, 1), grounding=st.floats(0, 1))
    def add_candidate(self, credential, priority, grounding):
        self._add(credential, priority, grounding)

    @rule(required=st.integers(1, 3), apply=st.booleans())
    def set_reviews_required(self, required, apply):
        self.project.reviews_required = required
        self.project.save(update_fields=["reviews_required"])
        if not apply:
            return
        kept = {}  # per waiting candidate: the slots that must stay (claimed or done)
        for cid, state in ReviewSlot.objects.filter(
            project=self.project, candidate__status=PENDING
        ).values_list("candidate_id", "state"):
            kept[cid] = kept.get(cid, 0) + (state != ReviewSlot.OPEN)
        candidates_reviews_required_apply(project=self.project)
        for cid, n in kept.items():
            self.required[cid] = max(required, n)
        assert not candidates_slots_off_target(project=self.project).exists()

    def _auto_reject(self, candidate_id: int) -> None:
        candidate = Candidate.objects.select_related("project").get(pk=candidate_id)
        # Re-scoring finds its format under the project's threshold.
        candidate.scores = {**candidate.scores, "format": _score(0.1)}
        candidate.save(update_fields=["scores"])
        _auto_reject([candidate])

    @rule(index=st.integers(0, MAX_CANDIDATES - 1))
    def auto_reject(self, index):
        ids = sorted(self.required)
        self._auto_reject(ids[index % len(ids)])

    @precondition(lambda self: any(self.screen.values()))
    @rule(data=st.data())
    def auto_reject_under_review(self, data):
        """Re-scoring rejects the candidate a reviewer has open."""
        r = data.draw(st.sampled_from([r for r, shown in self.screen.items() if shown]))
        self._auto_reject(self.screen[r][0])

    @rule(threshold=st.floats(0.1, 0.9))
    def bulk_reject(self, threshold):
        request = bulk.BulkRequest(
            action=bulk.REJECT_BELOW, filters=BrowseFilters(), score_name="grounding",
            threshold=threshold,
        )
        bulk.bulk_run(project=self.project, user=self.admin, request=request)

    # ---- reviewers ----------------------------------------------------------------------------

    def _next(self, r: int) -> Candidate | None:
        user = self.reviewers[r]
        candidate = claims.claim_next(project=self.project, user=user)
        if candidate is None:
            self.screen[r] = None
            assert not self._claimable(user), "claim_next found nothing, but work is left"
            return None
        candidate.refresh_from_db()
        assert candidate.status == PENDING, f"handed a read-only candidate ({candidate.status})"
        _, _, decisions = self._rows()
        assert candidate.pk not in self._standing(decisions, user.pk), "handed a decided candidate"
        assert ReviewSlot.objects.filter(
            candidate=candidate, reviewer=user, state=ReviewSlot.CLAIMED
        ).exists(), "handed a candidate without a claim on it"
        self.screen[r] = (candidate.pk, candidate.version)
        return candidate

    @rule(r=st.integers(0, 2))
    def next(self, r):
        self._next(r)

    @precondition(lambda self: any(self.screen.values()))
    @rule(r=st.integers(0, 2), action=st.sampled_from((APPROVE, EDIT, REJECT, SKIP, FLAG)),
          text=st.sampled_from(TEXTS))
    def decide(self, r, action, text):
        if self.screen[r] is not None:
            self._decide(r, action, text)
            # As the review screen does: the answer to a decision is the next candidate.
            self._next(r)

    def _decide(self, r: int, action: str, text: str) -> None:
        candidate_id, version = self.screen[r]
        try:
            services.decision_record(
                candidate_id=candidate_id, user=self.reviewers[r], action=action, version=version,
                reason="other", instruction=None, response=text,
            )
        except services.Conflict:
            pass  # the page was stale: the reviewer is shown what changed
        self.screen[r] = None

    @rule(r=st.integers(0, 2))
    def undo(self, r):
        before = dict(Candidate.objects.filter(project=self.project).values_list("id", "status"))
        slots_before = self._slot_counts()
        try:
            undo = services.decision_undo_last(project=self.project, user=self.reviewers[r])
        except services.Conflict:
            return
        candidate = Candidate.objects.get(pk=undo.candidate_id)
        self.screen[r] = (candidate.pk, candidate.version)
        if before[candidate.pk] != PENDING:
            # Back in the queue: its slots topped up to what the project asks now.
            expected = max(self.project.reviews_required, slots_before.get(candidate.pk, 0))
            assert self._slot_counts()[candidate.pk] == expected, "undo left the slots short"
            self.required[candidate.pk] = expected

    @rule(r=st.integers(0, 2))
    def sign_out(self, r):
        claims.claims_release_for_user(user=self.reviewers[r])
        self.screen[r] = None

    @rule(r=st.integers(0, 2))
    def lease_expires(self, r):
        ReviewSlot.objects.filter(reviewer=self.reviewers[r], state=ReviewSlot.CLAIMED).update(
            claim_expires_at=timezone.now() - timedelta(seconds=1)
        )

    @rule()
    def drain(self):
        """Everyone signs out, then reviews (approves) until nobody is handed anything."""
        for r in self.screen:
            self.sign_out(r)
        for _ in range(4 * MAX_CANDIDATES * len(self.reviewers)):
            handed = False
            for r in self.screen:
                candidate = self._next(r)
                if candidate is not None:
                    handed = True
                    self._decide(r, APPROVE, TEXTS[0])
            if not handed:
                break
        for user in self.reviewers:
            assert not self._claimable(user), "a pending candidate is never offered"

    # ---- what holds after every step ----------------------------------------------------------

    @invariant()
    def slots_agree_with_candidates(self):
        candidates, slots, decisions = self._rows()
        claimed_by: dict[int, int] = {}
        reviewers_of: dict[int, list[int]] = {}
        unfinished: dict[int, int] = {}
        for _, cid, state, rid, expires in slots:
            if state == ReviewSlot.OPEN:
                assert rid is None, "an open slot names a reviewer"
            if state == ReviewSlot.CLAIMED:
                assert rid is not None and expires is not None, "a claim without a holder"
                claimed_by[rid] = claimed_by.get(rid, 0) + 1
            if rid is not None:
                reviewers_of.setdefault(cid, []).append(rid)
            if state != ReviewSlot.DONE:
                unfinished[cid] = unfinished.get(cid, 0) + 1
                assert candidates[cid][0] == PENDING, "a slot open or claimed out of the queue"
        assert all(n == 1 for n in claimed_by.values()), "a reviewer holds two claims"
        for rids in reviewers_of.values():
            assert len(rids) == len(set(rids)), "one reviewer holds two slots of a candidate"
        counts = self._slot_counts()
        for cid, (status, _) in candidates.items():
            if status == PENDING:
                assert counts.get(cid, 0) == self.required[cid], "wrong number of slots"
                assert unfinished.get(cid), "a pending candidate with nothing left to review"

    @invariant()
    def n_reviews_by_n_reviewers(self):
        system = set(
            Decision.objects.filter(candidate__project=self.project, reviewer__isnull=True)
            .values_list("candidate_id", flat=True)
        )
        verdicts: dict[int, set[int]] = {}
        for cid, rid in verdicts_standing(project=self.project).values_list("candidate_id", "reviewer_id"):
            verdicts.setdefault(cid, set()).add(rid)
        settled = Candidate.objects.filter(
            project=self.project, status__in=(APPROVED, REJECTED, ADJUDICATION)
        ).exclude(id__in=system)
        for cid in settled.values_list("id", flat=True):
            assert len(verdicts.get(cid, ())) == self.required[cid], "decided by too few or many"


def test_review_queue_state_machine(project, reviewer, reviewer2, admin_user):
    QueueMachine.project_id = project.pk
    QueueMachine.reviewers = [reviewer, reviewer2, admin_user]
    QueueMachine.admin = admin_user
    run_state_machine_as_test(
        QueueMachine,
        settings=settings(
            max_examples=50, stateful_step_count=30, deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
