from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "medmax_review.scoring"
    label = "scoring"
