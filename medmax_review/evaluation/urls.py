from django.urls import path

from medmax_review.evaluation import views

urlpatterns = [
    path("", views.evaluation_list, name="evaluation_list"),
    path("<int:run_id>/", views.evaluation_detail, name="evaluation_detail"),
]
