from django.contrib import admin

from medmax_review.projects.models import UserProfile
from medmax_review.projects.services import credentialed_access_set


@admin.register(UserProfile)
class UserProfileAdmin(admin.ModelAdmin):
    """The platform's page for credentialed access: staff only (the Django admin), every change
    through the service so it is audited."""

    list_display = ("user", "credentialed_access")
    list_filter = ("credentialed_access",)
    search_fields = ("user__username",)
    fields = ("user", "credentialed_access")
    readonly_fields = ("user",)

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        credentialed_access_set(user=obj.user, granted=obj.credentialed_access, actor=request.user)
