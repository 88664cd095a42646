from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from medmax_review.review import claims


@receiver(user_logged_out)
def release_claims_on_logout(sender, request, user, **kwargs):
    # A reviewer who signs out is not coming back to these soon: let others have them now.
    if user is not None:
        claims.claims_release_for_user(user=user)
