"""URL root: the editor app owns every page."""

from django.urls import include, path

urlpatterns = [
    path("", include("editor.urls")),
]
