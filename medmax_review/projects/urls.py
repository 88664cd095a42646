from django.urls import path

from medmax_review.projects import views

urlpatterns = [
    path("", views.project_dashboard, name="project_dashboard"),
]
