"""Set-up accounts: kept in a file only the user can read, shown again, reset on request."""

import stat

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from medmax_review.core import accounts


def _file_mode():
    return stat.S_IMODE(accounts.accounts_path().stat().st_mode)


def test_load_demo_keeps_the_new_accounts_in_a_private_file(db, capsys):
    call_command("load_demo")

    out = capsys.readouterr().out
    password = out.split("username: admin  password: ")[1].split()[0]
    assert _file_mode() == 0o600
    text = accounts.accounts_path().read_text()
    assert f"admin  admin  {password}" in text and "reviewer  reviewer  " in text
    assert password in accounts.accounts_banner()
    assert "reset_password USERNAME" in accounts.accounts_banner()


def test_reset_password_prints_a_new_one_and_updates_the_file(db, capsys):
    call_command("load_demo")
    capsys.readouterr()
    call_command("reset_password", "reviewer")

    out = capsys.readouterr().out
    new = out.split("new password for reviewer: ")[1].split()[0]
    assert get_user_model().objects.get(username="reviewer").check_password(new)
    assert f"reviewer  reviewer  {new}" in accounts.accounts_path().read_text()
    assert _file_mode() == 0o600


def test_reset_password_of_another_account_leaves_the_file_alone(db, capsys):
    get_user_model().objects.create_user(username="dana", password="old-password-1")

    call_command("reset_password", "dana")

    new = capsys.readouterr().out.split("new password for dana: ")[1].split()[0]
    assert get_user_model().objects.get(username="dana").check_password(new)
    assert not accounts.accounts_path().exists()
    with pytest.raises(CommandError, match="no account named 'nobody'"):
        call_command("reset_password", "nobody")


def test_banner_without_accounts_says_how_to_make_one(db):
    assert "createsuperuser" in accounts.accounts_banner()
