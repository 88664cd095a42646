from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "medmax_review.review"
    label = "review"

    def ready(self):
        from medmax_review.review import signals  # noqa: F401  (connects the receivers)
