from django.urls import path

from medmax_review.projects import views

urlpatterns = [
    path("", views.project_dashboard, name="project_dashboard"),
    path("settings/", views.project_settings, name="project_settings"),
    path("members/", views.project_members, name="project_members"),
    path("members/<int:user_id>/role/", views.project_member_role, name="project_member_role"),
    path("members/<int:user_id>/remove/", views.project_member_remove, name="project_member_remove"),
]
