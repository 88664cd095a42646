from django.urls import path

from medmax_review.sources import views

urlpatterns = [
    path("<str:sha256>/", views.image_file, name="image_file"),
]
