from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "medmax_review.core"
    label = "core"

    def ready(self):
        # Connects the sign-in signals to the audit log.
        from medmax_review.core import audit  # noqa: F401
