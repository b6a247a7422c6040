from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The HTTP API for scripts and plug-ins: API keys, the remove.bg-compatible call and the
    jobs API. It shares the editor's models, job queue, limits and retention."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "api"

    def ready(self) -> None:
        # The editor announces finished jobs without knowing about the API (editor.signals).
        from api.job_events import on_job_finished
        from editor.signals import job_finished

        job_finished.connect(on_job_finished, dispatch_uid="api-job-webhooks")
