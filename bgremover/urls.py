"""URL root: the editor app owns every page. Media files are never served from a public
URL: the editor's views check ownership and stream them from storage."""

from django.urls import include, path

urlpatterns = [
    path("", include("editor.urls")),
]
