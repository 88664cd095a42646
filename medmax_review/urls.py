from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from medmax_review.projects import views as project_views

urlpatterns = [
    path("", project_views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("django-admin/", admin.site.urls),
    path("p/<slug:slug>/", include("medmax_review.projects.urls")),
    path("p/<slug:slug>/import/", include("medmax_review.sources.urls")),
    path("p/<slug:slug>/generation/", include("medmax_review.generation.urls")),
    path("p/<slug:slug>/review/", include("medmax_review.review.urls")),
    path("p/<slug:slug>/candidates/", include("medmax_review.review.browse_urls")),
    path("p/<slug:slug>/exports/", include("medmax_review.exports.urls")),
    path("p/<slug:slug>/evaluations/", include("medmax_review.evaluation.urls")),
    path("images/", include("medmax_review.sources.image_urls")),
]

if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()
