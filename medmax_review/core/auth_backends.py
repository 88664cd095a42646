"""Sign-in throttling for every login form (ours and the Django admin's), through django-axes."""

from axes.backends import AxesStandaloneBackend


class ThrottledSignIn(AxesStandaloneBackend):
    """Refuses sign-ins for a locked account or client address.

    A sign-in over HTTP always carries its request; only code calling authenticate() itself
    (management commands, the test client) passes none, and there is no client to throttle.
    """

    def authenticate(self, request=None, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
