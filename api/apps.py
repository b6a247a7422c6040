from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The HTTP API for scripts and plug-ins: API keys, the remove.bg-compatible call and the
    jobs API. It shares the editor's models, job queue, limits and retention."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "api"
