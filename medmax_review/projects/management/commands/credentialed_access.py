"""python manage.py credentialed_access USERNAME --grant|--revoke: staff grant access to the records
of credentialed sources (a data-use agreement), recorded in the audit log."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from medmax_review.projects.services import credentialed_access_set


class Command(BaseCommand):
    help = "Grant or revoke a user's access to credentialed records (logged as a staff action)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        change = parser.add_mutually_exclusive_group(required=True)
        change.add_argument("--grant", action="store_true")
        change.add_argument("--revoke", action="store_true")

    def handle(self, *args, username, grant, revoke, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no account named {username!r}")
        # Whoever runs manage.py on the server acts as staff; the log names no web user.
        changed = credentialed_access_set(user=user, granted=grant, actor=None)
        state = "granted" if grant else "revoked"
        self.stdout.write(f"credentialed access {state} for {username}" if changed
                          else f"{username} already had it {state}")
