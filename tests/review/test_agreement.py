"""Agreement metrics against published worked examples."""

from datetime import timedelta

import pytest
from django.utils import timezone

from medmax_review.review import stats
from medmax_review.review.models import APPROVE, EDIT, REJECT, UNDO, Decision
from tests.review.test_browse_data import add_candidates, decide


def _table(yes_yes, yes_no, no_yes, no_no):
    return (
        [("yes", "yes")] * yes_yes + [("yes", "no")] * yes_no
        + [("no", "yes")] * no_yes + [("no", "no")] * no_no
    )


def test_cohen_kappa_wikipedia_example():
    # Wikipedia, "Cohen's kappa", simple example: 50 proposals, p_o = 0.7, p_e = 0.5.
    assert stats.cohen_kappa(_table(20, 5, 10, 15)) == pytest.approx(0.4)


def test_cohen_kappa_wikipedia_same_agreement_different_marginals():
    # Wikipedia's pair of tables with equal agreement (60%) but different kappa.
    assert stats.cohen_kappa(_table(45, 15, 25, 15)) == pytest.approx(0.1304, abs=1e-4)
    assert stats.cohen_kappa(_table(25, 35, 5, 35)) == pytest.approx(0.2593, abs=1e-4)


def test_cohen_kappa_perfect_and_undefined():
    assert stats.cohen_kappa([("a", "a"), ("b", "b")]) == pytest.approx(1.0)
    assert stats.cohen_kappa([]) is None
    assert stats.cohen_kappa([("a", "a"), ("a", "a")]) is None  # chance agreement is certain


# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: four observers,
# twelve units, nominal values with missing data; alpha = 0.743.
KRIPPENDORFF_2011 = [
    # observer:  A     B     C     D
    [1, 1, None, 1],
    [2, 2, 3, 2],
    [3, 3, 3, 3],
    [3, 3, 3, 3],
    [2, 2, 2, 2],
    [1, 2, 3, 4],
    [4, 4, 4, 4],
    [1, 1, 2, 1],
    [2, 2, 2, 2],
    [None, 5, 5, 5],
    [None, None, 1, 1],
    [None, 3, None, None],
]


def test_krippendorff_alpha_nominal_textbook_example():
    assert stats.krippendorff_alpha_nominal(KRIPPENDORFF_2011) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_two_raters_relates_to_scotts_pi():
    # Two raters, no missing values: alpha = 1 - (2N - 1) / (2N) * (1 - pi), Scott's pi.
    # Wikipedia table (N = 50): p_o = 0.7, pooled yes share 55/100, p_e = 0.55^2 + 0.45^2.
    pairs = _table(20, 5, 10, 15)
    p_e = 0.55**2 + 0.45**2
    pi = (0.7 - p_e) / (1 - p_e)
    expected = 1 - (99 / 100) * (1 - pi)
    assert stats.krippendorff_alpha_nominal([list(p) for p in pairs]) == pytest.approx(expected)


def test_krippendorff_alpha_perfect_and_undefined():
    assert stats.krippendorff_alpha_nominal([["a", "a"], ["b", "b", None]]) == pytest.approx(1.0)
    assert stats.krippendorff_alpha_nominal([["a", None], [None, "b"]]) is None
    assert stats.krippendorff_alpha_nominal([["a", "a"], ["a", "a"]]) is None


# ---- verdicts from decisions -----------------------------------------------------------------


def test_verdicts_by_candidate_counts_edits_as_approvals_and_skips_undone(
    project, reviewer, reviewer2
):
    a, b = add_candidates(project, 2)
    decide(a, reviewer, EDIT)
    first = decide(a, reviewer2, APPROVE)
    decide(a, reviewer2, UNDO, undoes=first)
    decide(a, reviewer2, REJECT, reason="other")
    decide(b, reviewer, APPROVE)
    Decision.objects.create(candidate=b, action=REJECT, system_note="auto", candidate_version=1)
    verdicts = stats.verdicts_by_candidate(project=project)
    assert verdicts == {
        a.id: {reviewer.id: APPROVE, reviewer2.id: REJECT},
        b.id: {reviewer.id: APPROVE},
    }


def test_agreement_summary_from_decisions(project, reviewer, reviewer2, adjudicator):
    cands = add_candidates(project, 4)
    plan = [(APPROVE, APPROVE), (REJECT, REJECT), (APPROVE, REJECT), (REJECT, REJECT)]
    for c, (x, y) in zip(cands, plan, strict=True):
        decide(c, reviewer, x)
        decide(c, reviewer2, y)
    decide(cands[0], adjudicator, APPROVE)
    summary = stats.agreement_summary(project=project, names={reviewer.id: "rita"})
    pair = next(p for p in summary["pairs"] if p["items"] == 4)
    expected = stats.cohen_kappa(
        [("approve", "approve"), ("reject", "reject"), ("approve", "reject"),
         ("reject", "reject")]
    )
    assert pair["kappa"] == pytest.approx(expected) == pytest.approx(0.5)
    assert summary["items"] == 4 and summary["reviewers"] == 3
    assert summary["alpha"] is not None and -1 <= summary["alpha"] <= 1


def test_agreement_pairs_and_alpha_with_partly_overlapping_reviewers(
        project, reviewer, reviewer2, adjudicator):
    """Each pair over the candidates both decided, in reviewer order; alpha over the candidates
    with two or more verdicts; a candidate with one verdict counts only as a reviewer's."""
    cands = add_candidates(project, 6)
    plan = [  # (reviewer, reviewer2, adjudicator); None: did not decide
        (APPROVE, APPROVE, REJECT), (REJECT, REJECT, None), (APPROVE, None, APPROVE),
        (None, REJECT, APPROVE), (REJECT, APPROVE, REJECT), (APPROVE, None, None),
    ]
    people = (reviewer, reviewer2, adjudicator)
    for c, row in zip(cands, plan, strict=True):
        for person, action in zip(people, row, strict=True):
            if action:
                decide(c, person, action)
    summary = stats.agreement_summary(project=project, names={})
    ids = sorted(p.id for p in people)
    column = {p.id: i for i, p in enumerate(people)}
    expected = []
    for i, a in enumerate(ids):
        for b in ids[i + 1:]:
            shared = [(row[column[a]], row[column[b]]) for row in plan
                      if row[column[a]] and row[column[b]]]
            expected.append((len(shared), stats.cohen_kappa(shared)))
    assert [(p["items"], p["kappa"]) for p in summary["pairs"]] == expected
    units = [[v for v in row if v] for row in plan if sum(bool(v) for v in row) >= 2]
    assert summary["alpha"] == pytest.approx(stats.krippendorff_alpha_nominal(units))
    assert (summary["items"], summary["reviewers"]) == (5, 3)


def test_reviewer_throughput_median_ignores_breaks(project, reviewer):
    cands = add_candidates(project, 5)
    start = timezone.now() - timedelta(hours=2)
    # Gaps of 20 s, 40 s, a 1-hour break, then 30 s: the median of 20, 40, 30 is 30.
    offsets = [0, 20, 60, 3660, 3690]
    for c, offset in zip(cands, offsets, strict=True):
        d = decide(c, reviewer, EDIT if offset == 20 else APPROVE)
        Decision.objects.filter(id=d.id).update(created_at=start + timedelta(seconds=offset))
    (row,) = stats.reviewer_throughput(project=project)
    assert row["decisions"] == 5
    assert row["median_seconds"] == pytest.approx(30)
    assert row["edit_rate"] == pytest.approx(1 / 5)


def test_reviewer_throughput_sql_matches_row_by_row(project, reviewer, reviewer2):
    cands = add_candidates(project, 6)
    start = timezone.now() - timedelta(hours=1)
    plan = [(reviewer, APPROVE, 0), (reviewer, REJECT, 25), (reviewer2, EDIT, 5),
            (reviewer, EDIT, 70), (reviewer2, APPROVE, 2000), (reviewer2, UNDO, 2011)]
    for c, (who, action, offset) in zip(cands, plan, strict=True):
        d = decide(c, who, action)
        Decision.objects.filter(id=d.id).update(created_at=start + timedelta(seconds=offset))
    fast = {r["reviewer_id"]: r for r in stats.reviewer_throughput(project=project)}
    slow = {r["reviewer_id"]: r for r in stats.reviewer_throughput_python(project=project)}
    for rid, row in slow.items():
        for key in ("decisions", "verdicts", "edits"):
            assert fast[rid][key] == row[key]
        assert fast[rid]["median_seconds"] == pytest.approx(row["median_seconds"])
    assert fast[reviewer.id]["median_seconds"] == pytest.approx(35)  # gaps 25 and 45
    assert fast[reviewer2.id]["median_seconds"] == pytest.approx(11)  # 1995 s is a break
    (own,) = stats.reviewer_throughput(project=project, reviewer_id=reviewer2.id)
    assert own["decisions"] == 3 and own["name"] == "rob_reviewer"
