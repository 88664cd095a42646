from django.contrib import admin

from medmax_review.core.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Staff read the log; nobody edits or deletes it from the UI."""

    list_display = ("created_at", "actor_name", "action", "project_slug", "target", "ip_address")
    list_filter = ("action",)
    search_fields = ("actor_name", "target", "project_slug")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
