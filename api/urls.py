from django.urls import URLPattern, path

from api import docs_views, job_views, removebg_views

app_name = "api"

urlpatterns: list[URLPattern] = [
    path("v1.0/removebg", removebg_views.removebg, name="removebg"),
    path("v1.0/account", removebg_views.account, name="account"),
    path("v1/jobs", job_views.jobs, name="jobs"),
    path("v1/jobs/<str:job_id>", job_views.job, name="job"),
    path("v1/jobs/<str:job_id>/result", job_views.job_result, name="job-result"),
    path("openapi.json", docs_views.openapi_json, name="openapi"),
    path("docs", docs_views.docs, name="docs"),
]
