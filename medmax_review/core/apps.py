from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "medmax_review.core"
    label = "core"

    def ready(self):
        # audit connects the sign-in signals to the audit log; bulk_write registers the
        # in_array lookup for every module that filters with it, whatever that one imports.
        from medmax_review.core import audit, bulk_write  # noqa: F401
