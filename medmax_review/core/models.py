from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """Who did what that matters for security, for the record: sign-ins (and failed ones), role
    and credential changes, exports and downloads, bulk actions, template edits.

    Written by core.audit.audit_record only; staff read it in the Django admin, where it cannot
    be changed. The project is kept by slug so the log outlives the project and core depends on
    no other app.
    """

    SIGN_IN, SIGN_IN_FAILED, SIGN_OUT = "sign_in", "sign_in_failed", "sign_out"
    ROLE_CHANGED, MEMBER_REMOVED, CREDENTIAL_CHANGED = "role_changed", "member_removed", "credential_changed"
    EXPORT_CREATED, EXPORT_DOWNLOADED = "export_created", "export_downloaded"
    BULK_ACTION, TEMPLATE_SAVED = "bulk_action", "template_saved"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    actor_name = models.CharField(max_length=150, blank=True, help_text="kept if the user goes")
    action = models.CharField(max_length=40, db_index=True)
    project_slug = models.CharField(max_length=100, blank=True)
    target = models.CharField(max_length=200, blank=True, help_text="the user, version, template")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_name or '-'} {self.action} {self.target}"
