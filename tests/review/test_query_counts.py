"""The browser table, the adjudication queue and the history page cost the same number of
queries whatever the number of rows they show."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from medmax_review.review.models import ADJUDICATION, APPROVE, Revision
from tests.review.test_browse_data import add_candidates, decide, score


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_candidate_browse_queries_do_not_grow_with_rows(client, project, admin_user):
    # given one page with 2 rows, then one with 30 (each with scores, records, models)
    client.force_login(admin_user)
    url = reverse("candidate_browse", args=[project.slug])
    add_candidates(project, 2, scores={"grounding": score(0.9, "good")})
    few = _queries(client, url)
    add_candidates(project, 28, scores={"grounding": score(0.1, "poor")})
    # then the query count is the same
    assert _queries(client, url) == few


def test_adjudication_queue_queries_do_not_grow_with_rows(client, project, adjudicator):
    client.force_login(adjudicator)
    url = reverse("adjudication_queue", args=[project.slug])
    add_candidates(project, 2, status=ADJUDICATION)
    few = _queries(client, url)
    add_candidates(project, 28, status=ADJUDICATION)
    assert _queries(client, url) == few


@pytest.mark.parametrize("n", [1, 12])
def test_candidate_history_queries_do_not_grow_with_revisions(
    client, project, admin_user, reviewer, n, django_assert_max_num_queries
):
    # given a candidate with n revisions and n decisions by a reviewer
    client.force_login(admin_user)
    (c,) = add_candidates(project, 1)
    for i in range(n):
        Revision.objects.create(
            candidate=c, field="response", text=f"The right lung, take {i}.",
            author=reviewer, candidate_version=i + 2,
        )
        decide(c, reviewer, APPROVE)
    # then the history page is read in a fixed number of queries
    with django_assert_max_num_queries(12):
        assert client.get(reverse("candidate_history", args=[project.slug, c.id])).status_code == 200


def test_candidate_browse_htmx_results_skip_the_filter_form_choices(client, project, admin_user):
    # given a project with candidates
    client.force_login(admin_user)
    add_candidates(project, 3, scores={"grounding": score(0.9, "good")})
    url = reverse("candidate_browse", args=[project.slug])
    # when htmx asks for the results only
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, {"task": "vqa"}, HTTP_HX_REQUEST="true")
    # then the sources and licences of every record are not read again, and the bulk form
    # still offers the score names
    assert response.status_code == 200
    sql = " ".join(q["sql"] for q in ctx.captured_queries).upper()
    assert "DISTINCT" not in sql
    assert "<option>grounding</option>" in response.content.decode()
