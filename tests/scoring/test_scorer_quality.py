"""Per-check precision and recall against clinicians' reject reasons, and suggested thresholds."""

import pytest

from medmax_review.core.checks import CHECKS, flags, reject_reason_for
from medmax_review.review.models import APPROVE, REJECT, Decision
from medmax_review.review.scorer_quality import scorer_quality, threshold_suggest
from medmax_review.scoring.services import candidates_score

CHECK = {c.key: c for c in CHECKS}


def test_threshold_is_the_loosest_cut_under_the_share_of_wrong_rejections():
    pairs = [(0.0, True)] * 6 + [(0.1, False)] + [(0.2, True)] * 10 + [(0.4, False)] * 5 \
        + [(0.9, False)] * 20
    # Below 0.3: 16 caught, one kept candidate among 17 (6%) — more than 5%, so not allowed;
    # below 0.05: the six at 0.0, none kept.
    assert threshold_suggest(pairs, max_wrong=0.05) == {
        "threshold": 0.05, "rejects": 6, "wrong": 0, "wrong_share": 0.0,
        "caught_share": 6 / 16}
    loose = threshold_suggest(pairs, max_wrong=0.10)
    assert (loose["threshold"], loose["rejects"], loose["wrong"]) == (0.3, 17, 1)


def test_no_threshold_when_too_few_would_be_caught_or_all_are_kept():
    assert threshold_suggest([(0.1, True), (0.2, True), (0.9, False)], max_wrong=0.05) is None
    assert threshold_suggest([(0.1, False)] * 10, max_wrong=0.05) is None
    assert threshold_suggest([], max_wrong=0.05) is None


def test_a_risk_threshold_rejects_at_or_above():
    pairs = [(0.95, True)] * 4 + [(0.9, True)] * 3 + [(0.6, False)] + [(0.2, False)] * 9
    s = threshold_suggest(pairs, max_wrong=0.05, reject_below=False)
    assert (s["threshold"], s["rejects"], s["wrong"], s["caught_share"]) == (0.9, 7, 0, 1.0)


def test_checks_read_findings_and_bands_and_say_when_nothing_was_checked():
    scores = {"consistency": {"value": 0.0, "band": "fail", "evidence": [
        {"rule": "laterality", "text": "left vs right"}]},
        "phi": {"value": 1.0, "band": "n/a", "evidence": []},
        "format": {"value": 0.1, "band": "fail", "evidence": []}}
    assert flags(CHECK["laterality"], scores) is True
    assert flags(CHECK["modality"], scores) is False
    assert flags(CHECK["phi"], scores) is None
    assert flags(CHECK["format"], scores) is True
    assert flags(CHECK["grounding"], scores) is None
    assert reject_reason_for("consistency", scores["consistency"]) == "laterality"
    assert reject_reason_for("consistency", {"evidence": [{"rule": "number"}]}) == "hallucination"
    assert reject_reason_for("format", {}) == "formatting"


@pytest.fixture
def decided(project, make_record, make_candidate, demo_rows, reviewer):
    """On a real VQA-RAD record: swapped sides rejected for laterality, a made-up finding
    rejected as hallucination, faithful answers approved, and one faithful answer a clinician
    rejected for laterality anyway (the check must not be credited with it)."""
    record = make_record(demo_rows["vqarad-1582"])  # "Which lung has diffuse opacification?"
    plan = []
    for i in range(8):
        plan.append((f"The left lung has diffuse opacification ({i}).", REJECT, "laterality"))
        plan.append((f"The right lung is diffusely opacified, number {i}.", APPROVE, ""))
    for i in range(4):
        plan.append((f"The right lung is opacified and there is a large pneumothorax ({i}).",
                     REJECT, "hallucination"))
    plan.append(("The right lung has diffuse opacification.", REJECT, "laterality"))
    candidates = [(make_candidate(record, response=text, sample_index=i), action, reason)
                  for i, (text, action, reason) in enumerate(plan)]
    candidates_score(candidate_ids=[c.id for c, _, _ in candidates])
    for c, action, reason in candidates:
        Decision.objects.create(candidate=c, reviewer=reviewer, action=action, reason=reason,
                                candidate_version=1)
    return candidates


def test_laterality_check_is_measured_against_wrong_laterality_rejections(project, decided):
    quality = scorer_quality(project=project)
    assert (quality["verdicts"], quality["rejected"]) == (21, 13)
    rows = {r["key"]: r for r in quality["checks"]}
    laterality = rows["laterality"]
    assert (laterality["flagged"], laterality["hits"], laterality["relevant"]) == (8, 8, 9)
    assert laterality["precision"] == 1.0 and laterality["recall"] == pytest.approx(8 / 9)
    # The made-up pneumothorax is an unsupported claim: measured against hallucination.
    claim = rows["unsupported_claim"]
    assert claim["hits"] == 4 and claim["relevant"] == 4 and claim["precision"] == 1.0
    assert rows["phi"]["relevant"] == 0 and rows["phi"]["recall"] is None


def test_suggested_consistency_threshold_would_have_rejected_the_swapped_sides(project, decided):
    project.auto_reject_max_wrong = 0.05
    thresholds = {r["score"]: r["suggestion"] for r in scorer_quality(project=project)["thresholds"]}
    consistency = thresholds["consistency"]
    assert consistency["wrong"] == 0 and consistency["rejects"] >= 8
    assert 0 < consistency["threshold"] <= 1


def test_stats_page_shows_precision_and_recall_per_check(client, project, decided, admin_user):
    client.force_login(admin_user)
    page = client.get(f"/p/{project.slug}/candidates/stats/").content.decode()
    row = page[page.index('data-check="laterality"'):]
    row = row[: row.index("</tr>")]
    assert "wrong laterality" in row and "100% " in row and "(8/8)" in row and "(8/9)" in row
    assert 'data-testid="threshold-suggestions"' in page


def test_a_reviewer_sees_no_scorer_quality(client, project, decided, reviewer):
    client.force_login(reviewer)
    page = client.get(f"/p/{project.slug}/candidates/stats/").content.decode()
    assert "check-quality" not in page


def test_a_check_that_never_ran_is_not_charged_with_misses(project, decided):
    judge = {r["key"]: r for r in scorer_quality(project=project)["checks"]}["llm_judge"]
    assert (judge["checked"], judge["relevant"], judge["recall"]) == (0, 0, None)
