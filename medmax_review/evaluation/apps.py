from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "medmax_review.evaluation"
    label = "evaluation"
