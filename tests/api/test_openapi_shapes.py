"""The job as the API shows it (api.job_data), in every state, and the webhook's payload,
against the OpenAPI document's schemas: the live tests see mostly finished jobs, these
also queued, running and failed ones."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone
from jsonschema import ValidationError

from api.job_data import job_data
from api.job_events import webhook_payload
from api.models import ApiJob, ApiKey
from editor.models import Job
from tests.api.openapi_check import CONTRACT
from tests.web.factories import make_job

pytestmark = pytest.mark.django_db

BASE = "https://bg.example.com"


@pytest.mark.parametrize("status", Job.Status.values)
def test_a_job_in_each_state_matches_the_schema(status: str) -> None:
    key = ApiKey.create("shapes").key
    ended = status in (Job.Status.DONE, Job.Status.FAILED)
    job = make_job(
        key.owner,
        status=status,
        percent=100 if ended else 40,
        error="The image could not be read." if status == Job.Status.FAILED else "",
        finished_at=timezone.now() if ended else None,
    )
    api_job = ApiJob.objects.create(
        job=job,
        key=key,
        site_url=BASE,
        webhook_url="https://hooks.example.com/bg" if ended else "",
        render_fields={"bg_color": "white", "size": "preview"},
        credits_charged=Decimal("0.25") if status == Job.Status.DONE else None,
    )
    shown = job_data(api_job, BASE)
    CONTRACT.validate({"data": shown}, {"$ref": "#/components/schemas/JobOne"})
    assert (shown["urls"]["result"] is not None) == (status == Job.Status.DONE)
    assert shown["urls"]["socket"].startswith("wss://bg.example.com/ws/api/jobs/")
    CONTRACT.validate(
        {"data": [shown], "meta": {"limit": 20, "next": None}},
        {"$ref": "#/components/schemas/JobPage"},
    )
    if ended:
        payload = webhook_payload(api_job, job)
        CONTRACT.validate(payload, {"$ref": "#/components/schemas/JobFinished"})


def test_the_schema_refuses_a_job_that_breaks_it() -> None:
    # The check itself can fail: a job without its urls, or with an unknown status.
    key = ApiKey.create("shapes").key
    api_job = ApiJob.objects.create(job=make_job(key.owner), key=key, site_url=BASE)
    shown = job_data(api_job, BASE)
    for broken in ({**shown, "status": "paused"}, {k: v for k, v in shown.items() if k != "urls"}):
        with pytest.raises(ValidationError):
            CONTRACT.validate({"data": broken}, {"$ref": "#/components/schemas/JobOne"})
