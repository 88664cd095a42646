from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "medmax_review.review"
    label = "review"
