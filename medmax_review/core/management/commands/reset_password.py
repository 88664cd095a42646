"""python manage.py reset_password USERNAME: a new random password, printed once."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from medmax_review.core import accounts


class Command(BaseCommand):
    help = (
        "Give an account a new random password and print it once (also updated in "
        "var/accounts.txt when the account was made by the set-up commands)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no account named {username!r}")
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.save(update_fields=["password"])
        role = accounts.account_role(username)
        if role:
            accounts.account_record(username=username, role=role, password=password)
        self.stdout.write(self.style.SUCCESS(
            f"new password for {username}: {password}  (shown once"
            + (f"; also in {accounts.accounts_path()})" if role else ")")
        ))
