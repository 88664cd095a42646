"""Sign-in throttling on every login form: per account and per client address."""

import pytest
from django.core.management import call_command
from django.urls import reverse

from tests.conftest import PASSWORD

LOGIN_FORMS = ["login", "admin:login"]


def _sign_in(client, username, password, form="login", address="203.0.113.7"):
    return client.post(reverse(form), {"username": username, "password": password},
                       REMOTE_ADDR=address)


@pytest.mark.parametrize("form", LOGIN_FORMS)
def test_wrong_passwords_lock_the_account_even_for_the_right_one(client, admin_user, settings, form):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, admin_user.username, "wrong password", form)

    response = _sign_in(client, admin_user.username, PASSWORD, form)

    assert response.status_code == 429
    assert "Too many failed sign-ins for alice_admin" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_one_address_trying_many_accounts_is_locked(client, admin_user, reviewer, settings):
    for i in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, f"guess{i}", "wrong password")

    assert _sign_in(client, reviewer.username, PASSWORD).status_code == 429
    # Another address is not locked out of that account.
    response = _sign_in(client, reviewer.username, PASSWORD, address="198.51.100.2")
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(reviewer.pk)


def test_fewer_failures_than_the_limit_then_success_resets_the_count(client, reviewer, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _sign_in(client, reviewer.username, "wrong").status_code == 200
    assert _sign_in(client, reviewer.username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _sign_in(client, reviewer.username, "wrong")
    assert _sign_in(client, reviewer.username, PASSWORD).status_code == 302


def test_staff_unlock_an_account(client, reviewer, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, reviewer.username, "wrong")
    assert _sign_in(client, reviewer.username, PASSWORD).status_code == 429

    call_command("axes_reset_username", reviewer.username)
    call_command("axes_reset_ip", "203.0.113.7")

    assert _sign_in(client, reviewer.username, PASSWORD).status_code == 302
