from django.urls import path

from medmax_review.generation import regenerate_views, views

urlpatterns = [
    path("", views.generation_jobs, name="generation_jobs"),
    path("jobs/<int:job_id>/", views.generation_job, name="generation_job"),
    path("jobs/<int:job_id>/cancel/", views.generation_job_cancel, name="generation_job_cancel"),
    path("jobs/<int:job_id>/resume/", views.generation_job_resume, name="generation_job_resume"),
    path("jobs/<int:job_id>/retry/", views.generation_job_retry, name="generation_job_retry"),
    path("templates/", views.generation_templates, name="generation_templates"),
    # The candidate browser's "regenerate these": its filters arrive with the POST.
    path("regenerate/", regenerate_views.candidate_regenerate, name="candidate_regenerate"),
]
