import pytest
from django.urls import reverse

from medmax_review.review.models import APPROVE, EDIT, REJECT, UNDO, Decision, Revision
from tests.review.test_browse_data import add_candidates, decide, score

XSS = "<script>alert('x')</script>"


def _url(project, candidate):
    return reverse("candidate_history", args=[project.slug, candidate.id])


@pytest.fixture
def story(project, reviewer, reviewer2):
    """A candidate edited once, decided by two reviewers, one decision undone, one system note."""
    (c,) = add_candidates(
        project, 1, response="The left lung shows opacity.", model="smollm2-135m",
        scores={"laterality": score(0.0, "fail", [{
            "rule": "laterality_mismatch", "text": "left vs source 'Right'",
            "field": "response", "spans": [[4, 8]]}])},
    )
    Revision.objects.create(
        candidate=c, field="response", text="The right lung shows diffuse opacity.",
        author=reviewer, candidate_version=2,
    )
    edit = decide(c, reviewer, EDIT, response="The right lung shows diffuse opacity.")
    rejected = decide(c, reviewer2, REJECT, reason="laterality", comment=XSS)
    undo = decide(c, reviewer2, UNDO, undoes=rejected)
    system = Decision.objects.create(
        candidate=c, action=APPROVE, system_note="re-import of v1", candidate_version=3
    )
    return {"candidate": c, "edit": edit, "rejected": rejected, "undo": undo, "system": system}


@pytest.mark.parametrize(
    "who, status",
    [("admin_user", 200), ("adjudicator", 200), ("reviewer", 403), ("outsider", 404)],
)
def test_candidate_history_roles(client, project, story, request, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get(_url(project, story["candidate"])).status_code == status


def test_candidate_history_other_project_is_404(client, project, admin_user):
    from medmax_review.projects.services import project_get_or_create

    other, _ = project_get_or_create(slug="other", name="Other")
    (c,) = add_candidates(other, 1)
    client.force_login(admin_user)
    assert client.get(_url(project, c)).status_code == 404


def test_candidate_history_shows_revisions_with_word_diff(client, project, admin_user, story):
    client.force_login(admin_user)
    response = client.get(_url(project, story["candidate"]))
    html = response.content.decode()
    revisions = response.context["revisions"]
    # instruction, context, response from the model, then the reviewer's response edit.
    assert [r.field for r in revisions] == ["instruction", "context", "response", "response"]
    assert revisions[-1].author.username == "rita_reviewer"
    assert ("del", "left") in revisions[-1].diff
    assert ("ins", "right") in revisions[-1].diff
    assert "<del>left</del>" in html and "<ins>right</ins>" in html
    assert "<ins>diffuse </ins>" in html


def test_candidate_history_shows_decisions_and_undo_links(client, project, admin_user, story):
    client.force_login(admin_user)
    html = client.get(_url(project, story["candidate"])).content.decode()
    assert "system: re-import of v1" in html
    assert "wrong laterality" in html
    rejected, undo = story["rejected"], story["undo"]
    assert f'href="#decision-{rejected.id}"' in html  # the undo points back at what it undid
    assert f'href="#decision-{undo.id}"' in html  # and the undone decision points forward
    assert f'id="decision-{story["edit"].id}"' in html


def test_candidate_history_escapes_script_in_comment_and_text(client, project, admin_user,
                                                              story, reviewer):
    Revision.objects.create(
        candidate=story["candidate"], field="response", text=f"Opacity {XSS} right.",
        author=reviewer, candidate_version=3,
    )
    client.force_login(admin_user)
    html = client.get(_url(project, story["candidate"])).content.decode()
    assert XSS not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html


def test_candidate_history_links_adjudication(client, project, adjudicator):
    from medmax_review.review.models import ADJUDICATION

    (c,) = add_candidates(project, 1, status=ADJUDICATION)
    client.force_login(adjudicator)
    html = client.get(_url(project, c)).content.decode()
    assert reverse("adjudication_candidate", args=[project.slug, c.id]) in html


def test_candidate_history_shows_provenance_and_score_evidence(client, project, admin_user,
                                                               story):
    client.force_login(admin_user)
    html = client.get(_url(project, story["candidate"])).content.decode()
    assert "smollm2-135m" in html
    # The review screen's score panel: the score, its band, the rule in words.
    panel = html.split('data-score="laterality"')[1].split("</details>")[0]
    assert '<span class="band">fail</span>' in panel
    assert '<span class="rule">laterality mismatch</span> left vs source &#x27;Right&#x27;' in panel
    assert "&#x27;spans&#x27;" not in html  # evidence reads as text, not as a raw dict
