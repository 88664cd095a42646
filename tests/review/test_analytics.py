"""Rejection analytics on decisions with known rates: counts, Wilson intervals, the template
version that rejects significantly more than its predecessor, reasons, drill-down, CSV."""

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from medmax_review.review import analytics
from medmax_review.review.models import APPROVED, REJECT, REJECTED, Candidate, Decision
from tests.review.review_fixtures import candidates_make


def _decided(project, reviewer, *, n, rejected, template, model, reasons=(), credential=False):
    """n decided candidates of one template version and model; the first `rejected` rejected,
    with `reasons` given in turn."""
    made = candidates_make(project, n, credential=credential)
    for i, c in enumerate(made):
        status = REJECTED if i < rejected else APPROVED
        Candidate.objects.filter(pk=c.pk).update(
            status=status, template_ref=template,
            provenance={"backend": "openai", "model": model},
        )
        if status == REJECTED:
            Decision.objects.create(candidate=c, reviewer=reviewer, action=REJECT,
                                    reason=reasons[i % len(reasons)], candidate_version=1)
    return made


@pytest.fixture
def known_rates(project, admin_user):
    # v1: 2 of 20 rejected (10%); v2: 12 of 20 (60%); v3: 11 of 20 (55%), no worse than v2.
    _decided(project, admin_user, n=20, rejected=2, template="vqa/default@v1", model="m-a",
             reasons=("formatting",))
    _decided(project, admin_user, n=20, rejected=12, template="vqa/default@v2", model="m-b",
             reasons=("hallucination", "hallucination", "laterality"))
    _decided(project, admin_user, n=20, rejected=11, template="vqa/default@v3", model="m-b",
             reasons=("hallucination",))
    # Credentialed: only users with credentialed access count them.
    _decided(project, admin_user, n=4, rejected=4, template="vqa/default@v3", model="m-b",
             reasons=("phi",), credential=True)
    # Still pending: not decided, not counted.
    candidates_make(project, 3)
    return project


def _by(breakdowns, name):
    return {g.value: g for b in breakdowns if b.name == name for g in b.groups}


def test_wilson_interval_textbook_values():
    # 2 of 20 at 95%: the interval tabulated for the Wilson score method.
    low, high = analytics.wilson_interval(2, 20)
    assert (round(low, 4), round(high, 4)) == (0.0279, 0.3010)
    assert analytics.wilson_interval(0, 0) is None
    low, high = analytics.wilson_interval(0, 10)
    assert low == 0.0 and round(high, 4) == 0.2775


def test_two_proportion_z_known_value():
    z, p = analytics.two_proportion_z(2, 20, 12, 20)
    # pooled 0.35, se sqrt(0.35*0.65*0.1) = 0.15083; z = 0.5 / 0.15083
    assert round(z, 4) == 3.3150
    assert round(p, 4) == 0.0009


def test_rejection_analytics_known_rates(known_rates, adjudicator, admin_user):
    breakdowns = analytics.rejection_analytics(project=known_rates, user=adjudicator)
    templates = _by(breakdowns, "template")
    assert [(v, g.decided, g.rejected) for v, g in templates.items()] == [
        ("vqa/default@v1", 20, 2), ("vqa/default@v2", 20, 12), ("vqa/default@v3", 20, 11),
    ]
    v1, v2, v3 = templates.values()
    assert v1.rate == 0.1 and v2.rate == 0.6 and v3.rate == 0.55
    assert (round(v1.interval[0], 4), round(v1.interval[1], 4)) == (0.0279, 0.3010)
    assert (round(v2.interval[0], 4), round(v2.interval[1], 4)) == (0.3866, 0.7812)
    assert v2.worse and v2.predecessor == "vqa/default@v1" and round(v2.z, 4) == 3.3150
    assert not v3.worse and v3.predecessor == "vqa/default@v2"
    assert not v1.worse and v1.predecessor == ""
    assert v2.reasons == {"hallucination": 8, "laterality": 4}
    assert v1.reasons == {"formatting": 2}
    models = _by(breakdowns, "model")
    assert {v: (g.decided, g.rejected) for v, g in models.items()} == {
        "m-a": (20, 2), "m-b": (40, 23)}
    assert {v: (g.decided, g.rejected) for v, g in _by(breakdowns, "backend").items()} == {
        "openai": (60, 25)}
    assert {v: (g.decided, g.rejected) for v, g in _by(breakdowns, "source").items()} == {
        "vqa_rad": (60, 25)}
    # With credentialed access the four credentialed rejections count too.
    seen_all = _by(analytics.rejection_analytics(project=known_rates, user=admin_user),
                   "template")
    assert (seen_all["vqa/default@v3"].decided, seen_all["vqa/default@v3"].rejected) == (24, 15)
    assert seen_all["vqa/default@v3"].reasons == {"hallucination": 11, "phi": 4}


def test_rejection_analytics_score_band(known_rates, adjudicator):
    Candidate.objects.filter(template_ref="vqa/default@v2").update(
        scores={"grounding": {"value": 0.2, "band": "poor"}})
    Candidate.objects.filter(template_ref="vqa/default@v1").update(
        scores={"grounding": {"value": 0.9, "band": "good"}})
    breakdowns = analytics.rejection_analytics(project=known_rates, user=adjudicator,
                                               score_name="grounding")
    bands = _by(breakdowns, "band")
    assert list(bands) == ["good", "poor", "(none)"]
    assert (bands["good"].decided, bands["good"].rejected) == (20, 2)
    assert (bands["poor"].decided, bands["poor"].rejected) == (20, 12)


def test_rejection_analytics_page_drills_down_and_marks(known_rates, adjudicator):
    client = Client()
    client.force_login(adjudicator)
    response = client.get(reverse("rejection_analytics", args=[known_rates.slug]))
    assert response.status_code == 200
    page = response.content.decode()
    browse = reverse("candidate_browse", args=[known_rates.slug])
    link = f'{browse}?template=vqa%2Fdefault%40v2&amp;status=rejected'
    assert link in page
    assert "significantly worse</strong> than vqa/default@v1" in page
    # Each reason opens its rejected candidates (where they can be regenerated).
    reason_link = f'{browse}?template=vqa%2Fdefault%40v2&amp;status=rejected&amp;reason=laterality'
    assert f'<a href="{reason_link}">wrong laterality: 4</a>' in page
    by_reason = client.get(f"{browse}?template=vqa%2Fdefault%40v2&status=rejected&reason=laterality")
    assert by_reason.context["page"].count == 4
    # The link opens the twelve rejected candidates of v2 in the browser.
    listed = client.get(f"{browse}?template=vqa%2Fdefault%40v2&status=rejected")
    assert listed.status_code == 200
    assert listed.context["page"].count == 12


def test_rejection_analytics_csv(known_rates, adjudicator):
    client = Client()
    client.force_login(adjudicator)
    response = client.get(reverse("rejection_analytics_csv", args=[known_rates.slug]))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    v2 = next(r for r in rows if r["breakdown"] == "template" and r["value"] == "vqa/default@v2")
    assert (v2["decided"], v2["rejected"], v2["rejection_rate"]) == ("20", "12", "0.6000")
    assert (v2["ci_low"], v2["ci_high"], v2["significantly_worse"]) == ("0.3866", "0.7812", "yes")
    assert (v2["reason_hallucination"], v2["reason_laterality"]) == ("8", "4")


def test_csv_cells_never_start_a_formula():
    assert analytics._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert analytics._cell("-5") == "'-5" and analytics._cell("vqa") == "vqa"


def test_rejection_analytics_needs_adjudicator(known_rates, reviewer):
    client = Client()
    client.force_login(reviewer)
    assert client.get(reverse("rejection_analytics", args=[known_rates.slug])).status_code == 403


def test_rejection_analytics_bad_score_name(known_rates, adjudicator):
    client = Client()
    client.force_login(adjudicator)
    url = reverse("rejection_analytics", args=[known_rates.slug])
    assert client.get(url, {"score": "x'); drop"}).status_code == 400
