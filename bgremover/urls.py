"""URL root: the editor app owns every page. Media files are never served from a public
URL: the editor's views check ownership and stream them from storage.

The HTTP API for scripts lives under /api/ (api.urls).

Beside it, for operators (editor.operations): /healthz, /readyz, /metrics, and with
settings.ADMIN_ENABLED Django's admin at /admin/ (editor.admin)."""

from django.conf import settings
from django.urls import include, path

from editor import operations

urlpatterns = [
    path("healthz", operations.healthz, name="healthz"),
    path("readyz", operations.readyz, name="readyz"),
    path("metrics", operations.metrics, name="metrics"),
    path("api/", include("api.urls")),
    path("", include("editor.urls")),
]

if settings.ADMIN_ENABLED:
    from django.contrib import admin

    urlpatterns.insert(0, path("admin/", admin.site.urls))
