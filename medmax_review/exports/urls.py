from django.urls import path

from medmax_review.exports import views

urlpatterns = [
    path("", views.export_list, name="export_list"),
    path("v<int:number>/", views.export_detail, name="export_detail"),
    path("v<int:number>/retry/", views.export_retry, name="export_retry"),
    path("v<int:number>/download/", views.export_download, name="export_download"),
]
