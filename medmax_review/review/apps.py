from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "medmax_review.review"
    label = "review"

    def ready(self):
        from medmax_review.projects.figures import figures_register
        from medmax_review.review import (
            signals,  # noqa: F401  (connects the receivers)
            stats,
        )

        figures_register("counts", stats.project_counts, max_age_seconds=stats.COUNTS_SECONDS)
        figures_register("stats", stats.stats_compute, max_age_seconds=stats.STATS_SECONDS)
