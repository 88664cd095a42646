from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "medmax_review.generation"
    label = "generation"
