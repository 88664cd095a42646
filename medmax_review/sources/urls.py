from django.urls import path

from medmax_review.sources import views

urlpatterns = [
    path("", views.import_upload, name="import_upload"),
    path("runs/<int:run_id>/", views.import_run, name="import_run"),
]
