import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from medmax_review.projects.models import ProjectFigures
from medmax_review.review import stats
from medmax_review.review.models import ADJUDICATION, APPROVE, APPROVED, EDIT, REJECT, REJECTED
from tests.review.test_browse_data import add_candidates, decide, score


def _url(project):
    return reverse("project_stats", args=[project.slug])


@pytest.fixture
def activity(project, reviewer, reviewer2):
    approved = add_candidates(project, 3, status=APPROVED, scores={"grounding": score(0.9, "good")})
    rejected = add_candidates(project, 2, status=REJECTED, scores={"grounding": score(0.1, "poor")})
    add_candidates(project, 4, task="image_captioning")
    add_candidates(project, 1, status=ADJUDICATION)
    for c in approved:
        decide(c, reviewer, APPROVE)
        decide(c, reviewer2, APPROVE)
    for c in rejected:
        decide(c, reviewer, REJECT, reason="hallucination")
        decide(c, reviewer2, EDIT)
    return {"approved": approved, "rejected": rejected}


@pytest.mark.parametrize("who", ["admin_user", "adjudicator"])
def test_project_stats_renders_charts_for_leads(client, project, activity, request, who):
    client.force_login(request.getfixturevalue(who))
    response = client.get(_url(project))
    assert response.status_code == 200
    html = response.content.decode()
    for section in ("progress", "throughput", "agreement", "edits", "bands"):
        assert f'id="{section}"' in html
    assert html.count("<svg") == 7
    # Charts, not tables of numbers, except the scorers' precision and recall and the
    # thresholds, which are read figure by figure; and nothing the CSP would block.
    assert "<table" not in html[: html.index('id="scorer-quality"')]
    assert html.count("<table") == 2
    assert "style=" not in html and "<script>" not in html and " onclick" not in html
    assert 'class="seg seg-approved"' in html and 'class="seg seg-pending"' in html
    assert "rita_reviewer" in html and "rob_reviewer" in html
    assert "/static/js/charts.js" in html


def test_project_stats_reviewer_sees_only_own_throughput(client, project, activity, reviewer):
    client.force_login(reviewer)
    response = client.get(_url(project))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Your throughput" in html
    assert "rita_reviewer" in html.split("<main>")[1].split("</main>")[0]
    assert "rob_reviewer" not in html
    assert 'id="agreement"' not in html and 'id="progress"' not in html
    assert [t["name"] for t in response.context["throughput"]] == ["rita_reviewer"]


def test_project_stats_outsider_404(client, project, outsider):
    client.force_login(outsider)
    assert client.get(_url(project)).status_code == 404


def test_project_stats_empty_project_renders(client, project, admin_user):
    client.force_login(admin_user)
    response = client.get(_url(project))
    assert response.status_code == 200
    assert "no data yet" in response.content.decode()


def test_progress_chart_bar_widths_follow_counts(project, activity):
    chart = stats.chart_stacked(
        rows=stats.progress_by_task(project=project), series=stats.PROGRESS_STATUSES
    )
    labels = [b["label"] for b in chart["bars"]]
    assert labels == ["all tasks", "image_captioning", "vqa"]
    everything = chart["bars"][0]
    assert everything["total"] == 10
    widths = {s["series"]: s["width"] for s in everything["segments"]}
    # approved 3, rejected 2, pending 4, adjudication 1: widths in the same proportions.
    assert widths["approved"] / widths["rejected"] == pytest.approx(1.5, rel=1e-3)
    assert widths["pending"] / widths["adjudication"] == pytest.approx(4, rel=1e-3)
    xs = [s["x"] for s in everything["segments"]]
    assert xs == sorted(xs)


def test_score_band_chart_shares(project, activity, reviewer):
    rows = stats.score_bands_vs_decisions(project=project)
    assert rows == [
        {"label": "grounding · good", "counts": {APPROVED: 3}},
        {"label": "grounding · poor", "counts": {REJECTED: 2}},
    ]
    chart = stats.chart_stacked(rows=rows, series=(APPROVED, REJECTED), share=True)
    assert [s["share"] for b in chart["bars"] for s in b["segments"]] == [100.0, 100.0]


def test_values_chart_places_negative_kappa_left_of_zero():
    chart = stats.chart_values(
        rows=[{"label": "a", "value": -0.5}, {"label": "b", "value": 0.5},
              {"label": "c", "value": None}],
        lo=-1.0, hi=1.0,
    )
    neg, pos, missing = chart["bars"]
    assert neg["x"] + neg["width"] == pytest.approx(chart["zero_x"])
    assert pos["x"] == pytest.approx(chart["zero_x"])
    assert neg["width"] == pytest.approx(pos["width"])
    assert "x" not in missing


def test_project_stats_kappa_shown(client, project, activity, admin_user):
    client.force_login(admin_user)
    html = client.get(_url(project)).content.decode()
    # rob approves everything, so the 3 agreements are exactly what chance gives: kappa 0.
    pair = re.search(r"rita_reviewer · rob_reviewer: (-?[0-9.]+)", html)
    assert pair is not None
    expected = stats.cohen_kappa([("approve", "approve")] * 3 + [("reject", "approve")] * 2)
    assert float(pair.group(1)) == pytest.approx(expected, abs=0.005)


def test_stats_are_stored_and_read_from_one_row(client, project, activity, admin_user):
    client.force_login(admin_user)

    def queries_of_a_visit():
        with CaptureQueriesContext(connection) as queries:
            html = client.get(_url(project)).content.decode()
        assert 'data-testid="computed-at"' in html
        return queries.captured_queries

    computed = queries_of_a_visit()
    stored = queries_of_a_visit()
    assert any("review_decision" in q["sql"] for q in computed)
    assert not any("review_decision" in q["sql"] or "review_candidate" in q["sql"]
                   for q in stored)  # one row of stored figures, whatever the project's size
    data = ProjectFigures.objects.get(project=project, name="stats").data
    assert len(data["throughput"]) >= 2
