"""The audit log's one writer, and the sign-in signals that feed it."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from medmax_review.core.models import AuditEvent

MAX_TARGET = 200


def _address(request) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def audit_record(action: str, *, actor=None, request=None, project=None, target="",
                 **details) -> AuditEvent:
    """Append one event. `project` is a Project or its slug; `details` must be JSON."""
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEvent.objects.create(
        action=action,
        actor=actor if authenticated else None,
        actor_name=actor.get_username() if authenticated else "",
        project_slug=getattr(project, "slug", project or ""),
        target=str(target)[:MAX_TARGET],
        ip_address=_address(request),
        details=details,
    )


@receiver(user_logged_in)
def _signed_in(sender, request, user, **kwargs):
    audit_record(AuditEvent.SIGN_IN, actor=user, request=request, target=user.get_username())


@receiver(user_logged_out)
def _signed_out(sender, request, user, **kwargs):
    if user is not None:
        audit_record(AuditEvent.SIGN_OUT, actor=user, request=request, target=user.get_username())


@receiver(user_login_failed)
def _sign_in_failed(sender, credentials, request=None, **kwargs):
    # Only the name that was tried: never the password.
    audit_record(AuditEvent.SIGN_IN_FAILED, request=request,
                 target=str(credentials.get("username", ""))[:150])
