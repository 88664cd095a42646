import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from medmax_review.projects.access import project_for
from medmax_review.projects.models import ADJUDICATOR, ADMIN, REVIEWER


def test_project_for_gives_outsider_404(project, outsider):
    with pytest.raises(Http404):
        project_for(outsider, project.slug, REVIEWER)


def test_project_for_gives_reviewer_403_for_admin_action(project, reviewer):
    with pytest.raises(PermissionDenied):
        project_for(reviewer, project.slug, ADMIN)


def test_project_for_lets_admin_act_as_adjudicator(project, admin_user):
    found, membership = project_for(admin_user, project.slug, ADJUDICATOR)
    assert found == project and membership.role == ADMIN


def test_home_lists_only_my_projects(client, project, reviewer, outsider):
    client.force_login(outsider)
    assert project.name not in client.get("/").content.decode()
    client.force_login(reviewer)
    assert project.name in client.get("/").content.decode()


def test_dashboard_outsider_404_member_200(client, project, reviewer, outsider):
    client.force_login(outsider)
    assert client.get(f"/p/{project.slug}/").status_code == 404
    client.force_login(reviewer)
    response = client.get(f"/p/{project.slug}/")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
