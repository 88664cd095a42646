import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from medmax_review.review import browse_selectors
from medmax_review.review.browse_selectors import BrowseError, BrowseFilters, candidates_browse
from medmax_review.review.models import ADJUDICATION, APPROVE, APPROVED, REJECTED
from tests.review.test_browse_data import add_candidates, decide, score


def _url(project):
    return reverse("candidate_browse", args=[project.slug])


def _ids(response):
    return sorted(c.id for c in response.context["page"].rows)


# ---- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "who, status",
    [("admin_user", 200), ("adjudicator", 200), ("reviewer", 403), ("outsider", 404)],
)
def test_candidate_browse_roles(client, project, request, who, status):
    add_candidates(project, 2)
    client.force_login(request.getfixturevalue(who))
    assert client.get(_url(project)).status_code == status


def test_candidate_browse_anonymous_redirects_to_login(client, project):
    response = client.get(_url(project))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


# ---- filters ---------------------------------------------------------------------------------


@pytest.fixture
def mixed(project, reviewer):
    """A baseline set plus one distinct group per filter; returns {name: ids of that group}."""
    add_candidates(project, 3)
    groups = {
        "task": add_candidates(project, 2, task="image_captioning"),
        "source": add_candidates(project, 2, source="slake"),
        "license": add_candidates(project, 2, license="CC BY 4.0"),
        "status": add_candidates(project, 2, status=REJECTED),
        "band": add_candidates(project, 2, scores={"grounding": score(0.1, "poor")}),
        "model": add_candidates(project, 2, model="gpt-4o"),
        "template": add_candidates(project, 2, template_ref="vqa/default@v3"),
        "disagreement": add_candidates(project, 2, status=ADJUDICATION),
        "reviewer": add_candidates(project, 2),
    }
    add_candidates(project, 2, scores={"grounding": score(0.9, "good")})
    for c in groups["reviewer"]:
        decide(c, reviewer, APPROVE)
    return {name: sorted(c.id for c in group) for name, group in groups.items()}


@pytest.mark.parametrize(
    "name, params",
    [
        ("task", {"task": "image_captioning"}),
        ("source", {"source": "slake"}),
        ("license", {"license": "CC BY 4.0"}),
        ("status", {"status": REJECTED}),
        ("band", {"score": "grounding", "band": "poor"}),
        ("model", {"model": "gpt-4o"}),
        ("template", {"template": "vqa/default@v3"}),
        ("disagreement", {"disagreement": "on"}),
    ],
)
def test_candidate_browse_filter(client, project, admin_user, mixed, name, params):
    client.force_login(admin_user)
    response = client.get(_url(project), params)
    assert response.status_code == 200
    assert _ids(response) == mixed[name]
    assert response.context["page"].count == len(mixed[name])


def test_candidate_browse_filter_reviewer(client, project, admin_user, reviewer, mixed):
    client.force_login(admin_user)
    response = client.get(_url(project), {"reviewer": reviewer.id})
    assert _ids(response) == mixed["reviewer"]


def test_candidate_browse_filters_combine(client, project, admin_user):
    add_candidates(project, 2, source="slake", task="image_captioning")
    wanted = add_candidates(project, 1, source="slake", task="vqa")
    add_candidates(project, 2, source="vqa_rad", task="vqa")
    client.force_login(admin_user)
    response = client.get(_url(project), {"source": "slake", "task": "vqa"})
    assert _ids(response) == [wanted[0].id]


@pytest.mark.parametrize(
    "params, named",
    [
        ({"band": "poor"}, "band: choose the score"),
        ({"sort": "record__caption"}, "sort:"),
        ({"score": "x__y"}, "score:"),
        ({"cursor": "not-a-cursor"}, "cursor: not a page link"),
    ],
)
def test_candidate_browse_bad_input_is_400_naming_the_field(client, project, admin_user,
                                                            params, named):
    add_candidates(project, 2)
    client.force_login(admin_user)
    response = client.get(_url(project), params)
    assert response.status_code == 400
    assert named in response.content.decode()
    assert response.context["page"] is None


def test_candidate_browse_htmx_bad_filter_shows_message_in_results(client, project, admin_user):
    client.force_login(admin_user)
    response = client.get(_url(project), {"band": "poor"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200  # htmx swaps only 2xx answers
    html = response.content.decode()
    assert 'class="error browse-error"' in html and "band: choose the score" in html


def test_candidate_browse_other_project_candidates_hidden(client, project, admin_user):
    from medmax_review.projects.services import project_get_or_create

    other, _ = project_get_or_create(slug="other", name="Other")
    add_candidates(other, 3)
    mine = add_candidates(project, 1)
    client.force_login(admin_user)
    assert _ids(client.get(_url(project))) == [mine[0].id]


# ---- rendering -------------------------------------------------------------------------------


def test_candidate_browse_htmx_renders_results_only(client, project, admin_user):
    add_candidates(project, 2, response="<script>alert(1)</script>")
    client.force_login(admin_user)
    full = client.get(_url(project)).content.decode()
    partial = client.get(_url(project), HTTP_HX_REQUEST="true").content.decode()
    assert "<html" in full and 'hx-push-url="true"' in full
    assert "<html" not in partial and 'id="browse-results"' in partial
    assert "<script>alert(1)</script>" not in partial
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in partial


def test_candidate_browse_bulk_form_only_for_admin(client, project, admin_user, adjudicator):
    add_candidates(project, 1)
    client.force_login(adjudicator)
    assert reverse("candidate_bulk", args=[project.slug]) not in client.get(_url(project)).content.decode()
    client.force_login(admin_user)
    assert reverse("candidate_bulk", args=[project.slug]) in client.get(_url(project)).content.decode()


def test_candidate_browse_count_is_capped(client, project, admin_user, monkeypatch):
    monkeypatch.setattr(browse_selectors, "COUNT_CAP", 4)
    add_candidates(project, 6)
    client.force_login(admin_user)
    response = client.get(_url(project))
    assert response.context["page"].count_capped
    assert "more than 4 matches" in response.content.decode()


# ---- keyset pagination -----------------------------------------------------------------------


def _walk(project, filters, limit):
    """Every page in order, following next_cursor; returns the ids seen and the page count."""
    seen, cursor, pages = [], "", 0
    while True:
        page = candidates_browse(project=project, filters=filters, cursor=cursor, limit=limit,
                                 user=_reader(project))
        seen += [c.id for c in page.rows]
        pages += 1
        if not page.next_cursor:
            return seen, pages
        cursor = page.next_cursor
        assert pages < 100, "pagination does not end"


def _reader(project):
    """An admin of the project with credentialed access: sees every candidate."""
    from medmax_review.projects.models import Membership
    return Membership.objects.filter(project=project, role="admin").first().user


@pytest.fixture
def tied(project, admin_user):
    """Candidates whose priority and grounding score tie in groups, some with no score at all."""
    out = []
    for i, p in enumerate([0.5, 0.5, 0.5, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.7, 0.5, 0.5, 0.3]):
        scores = {} if i % 4 == 3 else {"grounding": score(p, "fair")}
        out += add_candidates(project, 1, priority=p, scores=scores)
    return out


@pytest.mark.parametrize("sort", ["id", "-id", "priority", "-priority", "score:grounding",
                                  "-score:grounding"])
@pytest.mark.parametrize("limit", [1, 3, 4, 50])
def test_candidates_browse_keyset_covers_every_row_once(project, tied, sort, limit):
    seen, pages = _walk(project, BrowseFilters(sort=sort), limit)
    assert sorted(seen) == sorted(c.id for c in tied)
    assert len(seen) == len(set(seen))
    assert pages == -(-len(tied) // limit)

    def key(c):
        if sort.lstrip("-") == "priority":
            return (c.priority, c.id)
        if sort.lstrip("-") == "id":
            return (c.id, c.id)
        value = c.scores.get("grounding", {}).get("value", browse_selectors.MISSING_SCORE)
        return (value, c.id)

    expected = sorted(tied, key=key, reverse=sort.startswith("-"))
    assert seen == [c.id for c in expected]


def test_candidates_browse_keyset_with_filter(project, tied):
    add_candidates(project, 5, task="image_captioning", priority=0.5)
    seen, _ = _walk(project, BrowseFilters(sort="-priority", task="image_captioning"), 2)
    assert len(seen) == len(set(seen)) == 5


def test_candidates_browse_keyset_never_uses_offset(project, tied):
    first = candidates_browse(project=project, filters=BrowseFilters(sort="-priority"), limit=3,
                              user=_reader(project))
    with CaptureQueriesContext(connection) as queries:
        candidates_browse(
            project=project, filters=BrowseFilters(sort="-priority"), cursor=first.next_cursor,
            limit=3, user=_reader(project),
        )
    sql = " ".join(q["sql"] for q in queries.captured_queries).upper()
    assert "OFFSET" not in sql
    assert "LIMIT 4" in sql


def test_candidate_browse_view_next_links_walk_all_pages(client, project, admin_user, tied,
                                                         monkeypatch):
    monkeypatch.setattr(browse_selectors, "PAGE_SIZE", 4)
    client.force_login(admin_user)
    seen, params = [], {"sort": "priority"}
    for _ in range(10):
        response = client.get(_url(project), params)
        page = response.context["page"]
        seen += [c.id for c in page.rows]
        if not page.next_cursor:
            break
        assert f"cursor={page.next_cursor}" in response.content.decode()
        params = {"sort": "priority", "cursor": page.next_cursor}
    assert sorted(seen) == sorted(c.id for c in tied)
    assert len(seen) == len(set(seen))


def test_cursor_decode_rejects_garbage():
    with pytest.raises(BrowseError):
        browse_selectors.cursor_decode(browse_selectors.cursor_encode("x", 1))
    key, pk = browse_selectors.cursor_decode(browse_selectors.cursor_encode(0.25, 7))
    assert (key, pk) == (0.25, 7)


def test_candidate_browse_status_approved_filter_excludes_pending(client, project, admin_user):
    approved = add_candidates(project, 2, status=APPROVED)
    add_candidates(project, 2)
    client.force_login(admin_user)
    assert _ids(client.get(_url(project), {"status": APPROVED})) == [c.id for c in approved]


def test_a_small_projects_first_page_walks_its_own_index(client, project, admin_user,
                                                        make_candidates):
    """Newest first, unfiltered: on the (project, id) index, not a walk back along the primary
    key through a larger project's newer candidates (1.5 s beside 1.47M of them)."""
    from medmax_review.projects.services import project_get_or_create
    from tests.review.review_fixtures import candidates_make

    if connection.vendor != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    make_candidates(3)
    large, _ = project_get_or_create(slug="large", name="Large")
    candidates_make(large, 150)
    client.force_login(admin_user)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("candidate_browse", args=[project.slug])).status_code == 200
    (sql,) = [q["sql"] for q in queries.captured_queries
              if q["sql"].startswith('SELECT "review_candidate"."id"') and "LIMIT" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE review_candidate")
        # Few rows make any plan cheap: forbid the scan and the sort, so the planner picks
        # between the indexes that already yield id order.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "candidate_project_idx on review_candidate" in plan, plan
