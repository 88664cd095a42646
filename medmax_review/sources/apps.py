from django.apps import AppConfig


class SourcesConfig(AppConfig):
    name = "medmax_review.sources"
    label = "sources"
