"""Job webhooks: when an API job with a webhook_url ends, done or failed, a real worker runs
it and then POSTs the job's final state to a real local HTTP server, signed with the key's
webhook secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.test import Client
from django_tasks import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME
from django_tasks_db.management.commands.db_worker import Worker

from api.models import ApiJob, ApiKey
from api.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from editor.models import Image, Job
from editor.tasks import UNEXPECTED_FAILURE
from tests.api.jobs_support import named, submit
from tests.api.local_servers import answer, serve
from tests.web.factories import make_job

PHOTO = "ecssd_0070"


@pytest.fixture(autouse=True)
def api_settings(settings: Any, tmp_path: Path, u2netp_weights: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.MODEL_DIR = str(u2netp_weights.parent)
    # The receiver is a local server: the operator allows loopback for this test.
    settings.API_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    cache.clear()


def run_worker() -> None:
    """A real django-tasks worker: runs what is queued (jobs, then their webhooks), returns."""
    Worker(
        queue_names=[DEFAULT_TASK_QUEUE_NAME],
        interval=0,
        batch=True,
        backend_name=DEFAULT_TASK_BACKEND_ALIAS,
        startup_delay=False,
        max_tasks=None,
        worker_id="webhook-test",
        excluded_queue_names=[],
    ).run()


@pytest.mark.django_db(transaction=True)
def test_a_finished_job_calls_its_webhook_signed_with_the_keys_secret(
    client: Client, eval_dir: Path
) -> None:
    new = ApiKey.create("hooks")
    photo = (eval_dir / "sod" / "images" / f"{PHOTO}.jpg").read_bytes()
    with serve({"/hook": lambda handler: answer(handler, b"", status=204)}) as server:
        hook = server.url("/hook")
        response = submit(
            client,
            new.text,
            {
                "image_file": [named(photo, "good.jpg"), named(photo, "broken.jpg")],
                "matting": "off",
                "webhook_url": hook,
            },
        )
        assert response.status_code == 202, response.content
        good, broken = (job["id"] for job in response.json()["data"])
        # The second job cannot open its file: it fails, and says so to the webhook too.
        default_storage.delete(Job.objects.get(pk=broken).image.original.name)
        run_worker()
        posts = [seen for seen in server.requests if seen.method == "POST"]

    assert len(posts) == 2, server.requests
    payloads = {}
    for seen in posts:
        assert seen.path == "/hook"
        assert seen.headers["Content-Type"] == "application/json"
        assert verify(
            new.key.webhook_secret,
            seen.headers[TIMESTAMP_HEADER],
            seen.body,
            seen.headers[SIGNATURE_HEADER],
        )
        assert not verify(
            "another secret",
            seen.headers[TIMESTAMP_HEADER],
            seen.body,
            seen.headers[SIGNATURE_HEADER],
        )
        payload = json.loads(seen.body)
        assert payload["event"] == "job.finished"
        payloads[payload["data"]["id"]] = payload["data"]
    done, failed = payloads[good], payloads[broken]
    assert (done["status"], done["finished"], done["error"]) == ("done", True, None)
    assert done["urls"]["result"] == f"http://testserver/api/v1/jobs/{good}/result"
    assert (failed["status"], failed["error"], failed["urls"]["result"]) == (
        "failed",
        UNEXPECTED_FAILURE,
        None,
    )
    # The result the webhook points at is there.
    result = client.get(f"/api/v1/jobs/{good}/result", HTTP_X_API_KEY=new.text)
    assert result.status_code == 200 and result["Content-Type"] == "image/png"


@pytest.mark.django_db
def test_jobs_without_a_webhook_and_browser_jobs_queue_nothing(
    django_capture_on_commit_callbacks: Any,
) -> None:
    key = ApiKey.create("quiet").key
    quiet = ApiJob.objects.create(
        job=make_job(key.owner, status=Job.Status.RUNNING), key=key, site_url="http://x"
    )
    browser = make_job("a-browser", status=Job.Status.RUNNING)
    with django_capture_on_commit_callbacks() as callbacks:
        quiet.job.fail("stopped")
        browser.fail("stopped")
    assert callbacks == []
    hooked = ApiJob.objects.create(
        job=make_job(key.owner, status=Job.Status.RUNNING),
        key=key,
        site_url="http://x",
        webhook_url="https://example.com/hook",
    )
    with django_capture_on_commit_callbacks() as callbacks:
        hooked.job.fail("stopped")
    assert len(callbacks) == 1  # the delivery, queued once the transaction commits
    assert Image.objects.count() == 3
