from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "medmax_review.core"
    label = "core"
