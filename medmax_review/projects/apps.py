from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "medmax_review.projects"
    label = "projects"
