from django.urls import path

from medmax_review.review import views

urlpatterns = [
    path("", views.review_next, name="review_next"),
    path("undo/", views.review_undo, name="review_undo"),
    path("reviews-required/", views.reviews_required_confirm, name="reviews_required_confirm"),
    path("adjudication/", views.adjudication_queue, name="adjudication_queue"),
    path(
        "adjudication/<int:candidate_id>/", views.adjudication_candidate,
        name="adjudication_candidate",
    ),
    path("<int:candidate_id>/", views.review_candidate, name="review_candidate"),
    path("<int:candidate_id>/decide/", views.review_decide, name="review_decide"),
    path("<int:candidate_id>/draft/", views.review_draft, name="review_draft"),
    path("<int:candidate_id>/overturn/", views.review_overturn, name="review_overturn"),
]
