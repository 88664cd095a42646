from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "medmax_review.exports"
    label = "exports"
