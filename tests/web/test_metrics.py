"""/metrics (editor.operations) behind its token, with values that match the rows, and the
failure reasons its failed-jobs counter is labelled with."""

from __future__ import annotations

import pytest
from django.test import Client

from editor import operator_actions
from editor.models import Job
from editor.operations import failure_reason
from editor.refusals import REFUSAL_REASONS
from tests.web.factories import make_job
from tests.web.metrics_support import TOKEN, samples, scrape


@pytest.mark.django_db
def test_metrics_are_off_without_a_token(client: Client, settings: object) -> None:
    settings.METRICS_TOKEN = ""  # type: ignore[attr-defined]
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization", [None, "", f"Bearer {TOKEN}x", f"bearer {TOKEN}", TOKEN, "Bearer s3cret"]
)
def test_metrics_need_the_right_token(
    client: Client, settings: object, authorization: str | None
) -> None:
    settings.METRICS_TOKEN = TOKEN  # type: ignore[attr-defined]
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = client.get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"bgremover" not in response.content


@pytest.mark.django_db
def test_metrics_report_the_rows_in_the_database(client: Client, settings: object) -> None:
    from editor.progress import time_limit_message
    from editor.tasks import UNEXPECTED_FAILURE, memory_limit_message

    settings.METRICS_TOKEN = TOKEN  # type: ignore[attr-defined]
    settings.JOB_QUEUE_LIMIT = 50  # type: ignore[attr-defined]
    for _ in range(2):
        make_job("a")
    make_job("b", status=Job.Status.RUNNING)
    for seconds in (0.2, 0.8, 3.0):
        make_job(
            "c",
            status=Job.Status.DONE,
            stage_seconds={"decoding": 0.1, "segmenting": seconds},
        )
    for error in (
        time_limit_message(600),
        memory_limit_message(2560),
        UNEXPECTED_FAILURE,
        "photo.jpg: the file is truncated",
        "photo.jpg: the file is truncated",
    ):
        make_job("d", status=Job.Status.FAILED, error=error)

    families = scrape(client)

    assert samples(families["bgremover_jobs"]) == {
        (("state", "queued"),): 2,
        (("state", "running"),): 1,
        (("state", "done"),): 3,
        (("state", "failed"),): 5,
    }
    assert samples(families["bgremover_queue_depth"]) == {(): 3}
    assert samples(families["bgremover_queue_limit"]) == {(): 50}
    assert samples(families["bgremover_queue_oldest_age_seconds"])[()] >= 0
    durations = families["bgremover_stage_duration_seconds"]
    assert samples(durations, "bgremover_stage_duration_seconds_count") == {
        (("stage", "decoding"),): 3,
        (("stage", "segmenting"),): 3,
    }
    sums = samples(durations, "bgremover_stage_duration_seconds_sum")
    assert sums[(("stage", "segmenting"),)] == pytest.approx(4.0)
    buckets = samples(durations, "bgremover_stage_duration_seconds_bucket")
    assert buckets[(("le", "0.25"), ("stage", "segmenting"))] == 1
    assert buckets[(("le", "1.0"), ("stage", "segmenting"))] == 2
    assert buckets[(("le", "+Inf"), ("stage", "segmenting"))] == 3
    failed = samples(families["bgremover_failed_jobs"])
    assert failed[(("reason", "time_limit"),)] == 1
    assert failed[(("reason", "memory_limit"),)] == 1
    assert failed[(("reason", "unexpected"),)] == 1
    assert failed[(("reason", "engine_error"),)] == 2
    assert sum(failed.values()) == 5
    assert samples(families["bgremover_disk_usage_bytes"])[()] == 11 * 1234 + 3 * 40 * 30 * 4
    assert set(samples(families["bgremover_refusals"], "bgremover_refusals_total")) == {
        (("reason", reason),) for reason in REFUSAL_REASONS
    }


def test_failure_reasons_are_read_from_the_messages_the_app_writes() -> None:
    from editor.progress import time_limit_message
    from editor.recovery import gave_up_message
    from editor.retention import overdue_message
    from editor.storage_check import LOST_RESULT
    from editor.tasks import (
        UNEXPECTED_FAILURE,
        WEIGHTS_UNAVAILABLE,
        WORKER_DIED,
        memory_limit_message,
    )

    assert failure_reason(time_limit_message(90)) == "time_limit"
    assert failure_reason(time_limit_message(600)) == "time_limit"
    assert failure_reason(overdue_message(600)) == "time_limit"
    assert failure_reason(memory_limit_message(2560)) == "memory_limit"
    assert failure_reason(WORKER_DIED) == "worker_lost"
    assert failure_reason(gave_up_message(3)) == "worker_lost"
    assert failure_reason(LOST_RESULT) == "result_lost"
    assert failure_reason(operator_actions.OPERATOR_FAILED) == "operator"
    assert failure_reason(UNEXPECTED_FAILURE) == "unexpected"
    assert failure_reason(WEIGHTS_UNAVAILABLE) == "weights"
    assert failure_reason("photo.heic: not an image we can read") == "engine_error"
