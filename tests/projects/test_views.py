import pytest
from django.contrib.auth import get_user_model

from medmax_review.projects.models import ADJUDICATOR, Membership

PAGES = ["settings/", "members/"]


@pytest.mark.parametrize("page", PAGES)
def test_admin_pages_outsider_404_reviewer_403_admin_200(client, project, admin_user, reviewer, outsider, page):
    url = f"/p/{project.slug}/{page}"
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    client.force_login(reviewer)
    assert client.get(url).status_code == 403
    client.force_login(admin_user)
    assert client.get(url).status_code == 200


def test_settings_saves_guidelines_and_thresholds(client, project, admin_user):
    client.force_login(admin_user)
    response = client.post(
        f"/p/{project.slug}/settings/",
        {"name": "Chest", "guidelines": "# Be careful", "reviews_required": 2,
         "auto_reject_thresholds": '{"format": 0.2}'},
    )
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.reviews_required, project.auto_reject_thresholds) == (2, {"format": 0.2})


@pytest.mark.parametrize(
    "thresholds, message",
    [("{bad", "Not valid JSON"), ('{"sparkle": 0.5}', "Unknown score"), ('{"phi": 3}', "from 0 to 1")],
)
def test_settings_rejects_bad_thresholds_and_keeps_saved_ones(client, project, admin_user, thresholds, message):
    project.auto_reject_thresholds = {"phi": 0.5}
    project.save()
    client.force_login(admin_user)
    response = client.post(
        f"/p/{project.slug}/settings/",
        {"name": "Chest", "guidelines": "", "reviews_required": 1, "auto_reject_thresholds": thresholds},
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    project.refresh_from_db()
    assert project.auto_reject_thresholds == {"phi": 0.5}


def test_members_admin_creates_account_with_password_shown_once(client, project, admin_user):
    client.force_login(admin_user)
    response = client.post(
        f"/p/{project.slug}/members/", {"username": "dr_new", "role": "reviewer"}
    )
    text = response.content.decode()
    assert response.status_code == 200 and "shown once" in text
    password = text.split('with password <code class="secret">')[1].split("<")[0]
    user = get_user_model().objects.get(username="dr_new")
    assert user.check_password(password)
    assert Membership.objects.get(project=project, user=user).role == "reviewer"
    # Not in the messages cookie or the session: only on that one page.
    assert password not in str(response.cookies) and password not in str(dict(client.session))
    assert password not in client.get(f"/p/{project.slug}/members/").content.decode()


def test_members_form_grants_no_credentialed_access(client, project, admin_user):
    client.force_login(admin_user)
    client.post(f"/p/{project.slug}/members/",
                {"username": "dr_cred", "role": "reviewer", "credentialed_access": "on"})
    assert get_user_model().objects.get(username="dr_cred").profile.credentialed_access is False


def test_members_form_adds_only_accounts_the_admin_can_see(client, project, admin_user):
    from medmax_review.projects import services as project_services

    other, _ = project_services.project_get_or_create(slug="elsewhere")
    stranger = project_services.user_create(username="stranger", password="x" * 12)
    project_services.membership_set(project=other, user=stranger, role="reviewer")
    colleague = project_services.user_create(username="colleague", password="x" * 12)
    project_services.membership_set(project=other, user=colleague, role="reviewer")
    project_services.membership_set(project=other, user=admin_user, role="reviewer")
    stranger_only, _ = project_services.project_get_or_create(slug="private")
    project_services.membership_set(project=stranger_only, user=stranger, role="admin")
    Membership.objects.filter(project=other, user=stranger).delete()
    client.force_login(admin_user)

    refused = client.post(f"/p/{project.slug}/members/", {"username": "stranger", "role": "admin"})
    added = client.post(f"/p/{project.slug}/members/", {"username": "colleague", "role": "reviewer"})

    assert refused.status_code == 400 and "is not available" in refused.content.decode()
    assert not Membership.objects.filter(project=project, user=stranger).exists()
    assert added.status_code == 302
    assert Membership.objects.filter(project=project, user=colleague).exists()


def test_members_role_change_and_remove(client, project, admin_user, reviewer):
    client.force_login(admin_user)
    client.post(f"/p/{project.slug}/members/{reviewer.pk}/role/", {"role": ADJUDICATOR})
    assert Membership.objects.get(project=project, user=reviewer).role == ADJUDICATOR
    client.post(f"/p/{project.slug}/members/{reviewer.pk}/remove/")
    assert not Membership.objects.filter(project=project, user=reviewer).exists()


def test_members_admin_cannot_remove_or_demote_self(client, project, admin_user):
    client.force_login(admin_user)
    client.post(f"/p/{project.slug}/members/{admin_user.pk}/role/", {"role": "reviewer"})
    client.post(f"/p/{project.slug}/members/{admin_user.pk}/remove/")
    assert Membership.objects.get(project=project, user=admin_user).role == "admin"


def test_members_role_change_unknown_role_says_so(client, project, admin_user, reviewer):
    client.force_login(admin_user)
    response = client.post(
        f"/p/{project.slug}/members/{reviewer.pk}/role/", {"role": "owner"}, follow=True
    )
    assert Membership.objects.get(project=project, user=reviewer).role == "reviewer"
    assert "Not a role" in response.content.decode()
    assert "your own role" not in response.content.decode()


def test_members_reviewer_cannot_post(client, project, reviewer, outsider):
    client.force_login(reviewer)
    assert client.post(f"/p/{project.slug}/members/", {"username": "x", "role": "admin"}).status_code == 403
    assert client.post(f"/p/{project.slug}/members/{outsider.pk}/remove/").status_code == 403
    assert not get_user_model().objects.filter(username="x").exists()


def test_no_open_signup(client, db):
    assert client.get("/signup/").status_code == 404
    assert client.get("/accounts/signup/").status_code == 404


def test_members_add_form_defaults_to_the_reviewer_role(client, project, admin_user):
    client.force_login(admin_user)
    html = client.get(f"/p/{project.slug}/members/").content.decode()
    add_form = html.split("Add a member")[1]
    assert '<option value="reviewer" selected>' in add_form
