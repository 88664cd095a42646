from django.urls import path

from medmax_review.review import analytics_views, browse_views

urlpatterns = [
    path("", browse_views.candidate_browse, name="candidate_browse"),
    path("<int:candidate_id>/history/", browse_views.candidate_history, name="candidate_history"),
    path("bulk/", browse_views.candidate_bulk, name="candidate_bulk"),
    path("stats/", browse_views.project_stats, name="project_stats"),
    path("rejections/", analytics_views.rejection_analytics, name="rejection_analytics"),
    path(
        "rejections.csv", analytics_views.rejection_analytics_csv,
        name="rejection_analytics_csv",
    ),
]
