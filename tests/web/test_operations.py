"""Operating it (editor.operations, editor.operator_actions, editor.admin, api.admin):
/healthz, /readyz and each way it fails, /metrics behind its token with values that match the
rows, refusal counters where requests are turned away, and the operators' admin (in a
subprocess with ADMIN_ENABLED=1, since INSTALLED_APPS and the URLs are settled at start-up)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from channels.layers import BaseChannelLayer
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import OperationalError
from django.test import Client
from django_tasks_db.models import DBTaskResult
from prometheus_client.parser import text_string_to_metric_families

from api.models import ApiKey
from bgremover.engine import weights_catalogue
from editor import operations, operator_actions
from editor.heavy import heavy_operation
from editor.models import Image, Job, Result
from editor.operations import REGISTRY, failure_reason
from editor.refusals import REFUSAL_REASONS
from editor.request_limits import MULTIPART_OVERHEAD
from tests.conftest import REPO_ROOT
from tests.fixtures import hostile
from tests.web.client import named_file, upload, visit
from tests.web.factories import make_image, make_job, session_cookie

TINY = hostile.one_pixel()[1]
TOKEN = "s3cret-metrics-token"
CHECK_NAMES = {"database", "channel_layer", "weights", "queue", "disk"}


# ---- /healthz


def test_healthz_answers_ok_without_touching_the_database(client: Client) -> None:
    # No django_db mark: any query would fail this test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert not response.cookies  # no session, no CSRF cookie
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


# ---- /readyz


@pytest.fixture
def ready(settings: object, real_weights: None, tmp_path: Path) -> None:
    """Settings under which every readiness check passes."""
    settings.DEFAULT_MODEL = "u2netp"  # type: ignore[attr-defined]
    settings.JOB_QUEUE_LIMIT = 200  # type: ignore[attr-defined]
    settings.DISK_BUDGET_BYTES = 10**9  # type: ignore[attr-defined]


def readiness(client: Client) -> tuple[int, dict[str, dict[str, object]]]:
    response = client.get("/readyz")
    body = response.json()
    assert set(body["checks"]) == CHECK_NAMES
    assert body["status"] == ("ok" if response.status_code == 200 else "failing")
    assert response["Cache-Control"] == "no-store"
    assert not response.cookies
    return response.status_code, body["checks"]


@pytest.mark.django_db
def test_readyz_passes_every_check(client: Client, ready: None) -> None:
    status, checks = readiness(client)
    assert status == 200, checks
    assert all(check["ok"] for check in checks.values())
    assert "u2netp.pth" in checks["weights"]["detail"]
    assert "CRC" in checks["weights"]["detail"]
    assert checks["queue"]["detail"] == "0 queued or running, JOB_QUEUE_LIMIT 200"
    assert "round trip" in checks["channel_layer"]["detail"]


class UnreachableLayer(BaseChannelLayer):
    """A channel layer whose server refuses connections."""

    async def new_channel(self, prefix: str = "specific.") -> str:
        return f"{prefix}test!1"

    async def send(self, channel: str, message: dict) -> None:
        raise ConnectionRefusedError("Connect call failed ('10.0.0.9', 6379)")


class SilentLayer(UnreachableLayer):
    """A channel layer whose server takes messages and never answers."""

    async def send(self, channel: str, message: dict) -> None:
        return None

    async def receive(self, channel: str) -> dict:
        import asyncio

        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class BrokenConnection:
    def cursor(self) -> object:
        raise OperationalError('connection to server at "db" failed: Connection refused')


def weights_dir_empty(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    settings.MODEL_DIR = str(empty)  # type: ignore[attr-defined]
    monkeypatch.setattr(weights_catalogue, "REPO_MODEL_DIR", empty)


def no_weights_anywhere(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights_dir_empty(settings, tmp_path, monkeypatch)
    settings.DEFAULT_MODEL = None  # type: ignore[attr-defined]


def weights_file_damaged(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = Path(settings.MODEL_DIR) / "u2netp.pth"  # type: ignore[attr-defined]
    weights_dir_empty(settings, tmp_path, monkeypatch)
    damaged = bytearray(source.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # one flipped byte inside a stored tensor
    (tmp_path / "no-models" / "u2netp.pth").write_bytes(bytes(damaged))


def queue_over_limit(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.JOB_QUEUE_LIMIT = 2  # type: ignore[attr-defined]
    make_job("someone")
    make_job("someone else", status=Job.Status.RUNNING)


def disk_budget_exceeded(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.DISK_BUDGET_BYTES = 1000  # type: ignore[attr-defined]
    make_image("someone")  # 1234 bytes


def disk_full(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.disk_usage
    monkeypatch.setattr(
        operations.shutil, "disk_usage", lambda path: real(path)._replace(free=10_000_000)
    )


def channel_layer_unreachable(
    settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.CHANNEL_LAYERS = {  # type: ignore[attr-defined]
        "default": {"BACKEND": f"{__name__}.UnreachableLayer"}
    }


def channel_layer_silent(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operations, "CHANNEL_TIMEOUT_S", 0.2)
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.SilentLayer"}}  # type: ignore[attr-defined]


def database_down(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operations, "connection", BrokenConnection())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("breakage", "failing", "detail"),
    [
        (weights_dir_empty, "weights", "u2netp.pth is not in"),
        (weights_dir_empty, "weights", "Run `python manage.py fetch_models u2netp`"),
        # The engine says what is missing; the app adds what to do about it.
        (
            no_weights_anywhere,
            "weights",
            "No model weights found (looked for u2net.pth and u2netp.pth in ",
        ),
        (no_weights_anywhere, "weights", "Run `python manage.py fetch_models` to download them"),
        (no_weights_anywhere, "weights", "or set BGREMOVER_MODEL_DIR to a directory that holds"),
        (weights_file_damaged, "weights", "fails its CRC check"),
        (queue_over_limit, "queue", "2 queued or running, JOB_QUEUE_LIMIT 2"),
        (disk_budget_exceeded, "disk", "of DISK_BUDGET_BYTES 0.0 MB"),
        (disk_full, "disk", "10.0 MB free on MEDIA_ROOT"),
        (channel_layer_unreachable, "channel_layer", "ConnectionRefusedError: Connect call"),
        (channel_layer_silent, "channel_layer", "no answer within 0.2 s"),
        (database_down, "database", "OperationalError: connection to server"),
    ],
)
def test_readyz_answers_503_naming_the_failing_check(
    client: Client,
    ready: None,
    settings: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    breakage: object,
    failing: str,
    detail: str,
) -> None:
    breakage(settings, tmp_path, monkeypatch)  # type: ignore[operator]
    status, checks = readiness(client)
    assert status == 503
    assert {name for name, check in checks.items() if not check["ok"]} == {failing}, checks
    assert detail in checks[failing]["detail"]


def test_the_weights_check_does_not_import_torch(u2netp_weights: Path, tmp_path: Path) -> None:
    code = (
        "import sys, django; django.setup()\n"
        "from editor.operations import check_weights\n"
        "check = check_weights()\n"
        "print(check.ok, 'torch' in sys.modules)\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bgremover.test_settings",
        "DATA_DIR": str(tmp_path),
        "BGREMOVER_MODEL_DIR": str(u2netp_weights.parent),
        "BGREMOVER_MODEL": "u2netp",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


# ---- /metrics


def scrape(client: Client, token: str = TOKEN) -> dict[str, object]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def samples(family: object, name: str | None = None) -> dict[tuple, float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for sample in family.samples  # type: ignore[attr-defined]
        if name is None or sample.name == name
    }


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
    from editor.tasks import UNEXPECTED_FAILURE, WORKER_DIED, memory_limit_message

    assert failure_reason(time_limit_message(90)) == "time_limit"
    assert failure_reason(time_limit_message(600)) == "time_limit"
    assert failure_reason(overdue_message(600)) == "time_limit"
    assert failure_reason(memory_limit_message(2560)) == "memory_limit"
    assert failure_reason(WORKER_DIED) == "worker_lost"
    assert failure_reason(gave_up_message(3)) == "worker_lost"
    assert failure_reason(LOST_RESULT) == "result_lost"
    assert failure_reason(operator_actions.OPERATOR_FAILED) == "operator"
    assert failure_reason(UNEXPECTED_FAILURE) == "unexpected"
    assert failure_reason("photo.heic: not an image we can read") == "engine_error"


# ---- Refusal counters


def refusals() -> dict[str, float]:
    return {
        reason: REGISTRY.get_sample_value("bgremover_refusals_total", {"reason": reason}) or 0.0
        for reason in REFUSAL_REASONS
    }


def as_owner(client: Client, owner: str) -> None:
    from django.conf import settings

    client.cookies[settings.SESSION_COOKIE_NAME] = session_cookie(owner)


def refuse_by_owner_rate(client: Client, settings: object) -> object:
    settings.RATE_LIMIT_UPLOADS = "1/1h"  # type: ignore[attr-defined]
    as_owner(client, "owner-1")
    upload(client, "a.png", b"not an image")  # counted, refused as a file (not measured)
    before = refusals()
    return before, upload(client, "b.png", TINY)


def refuse_by_address_rate(client: Client, settings: object) -> object:
    settings.RATE_LIMIT_UPLOADS_PER_ADDRESS = "1/1h"  # type: ignore[attr-defined]
    upload(client, "a.png", b"not an image")
    before = refusals()
    return before, upload(client, "b.png", TINY)


def refuse_by_download_rate(client: Client, settings: object) -> object:
    settings.RATE_LIMIT_DOWNLOADS = "1/1h"  # type: ignore[attr-defined]
    as_owner(client, "owner-1")
    job = make_job("owner-1", status=Job.Status.DONE)
    cutout = default_storage.save(f"images/{job.image_id}/{job.id}/cutout.png", ContentFile(TINY))
    Result.objects.create(job=job, cutout=cutout)
    assert client.get(f"/jobs/{job.id}/files/cutout").status_code == 200  # counted
    before = refusals()
    return before, client.get(f"/jobs/{job.id}/files/cutout")


def refuse_for_owner_queue(client: Client, settings: object) -> object:
    settings.JOB_QUEUE_LIMIT_PER_OWNER = 1  # type: ignore[attr-defined]
    as_owner(client, "owner-1")
    make_job("owner-1")
    return refusals(), upload(client, "b.png", TINY)


def refuse_for_full_queue(client: Client, settings: object) -> object:
    settings.JOB_QUEUE_LIMIT = 1  # type: ignore[attr-defined]
    make_job("someone")
    return refusals(), upload(client, "b.png", TINY)


def refuse_for_disk(client: Client, settings: object) -> object:
    settings.DISK_BUDGET_BYTES = 10  # type: ignore[attr-defined]
    return refusals(), upload(client, "b.png", TINY)


def refuse_when_busy(client: Client, settings: object) -> object:
    settings.HEAVY_OPERATIONS = 1  # type: ignore[attr-defined]
    settings.HEAVY_WAIT_S = 0  # type: ignore[attr-defined]
    before = refusals()
    with heavy_operation(None):  # the only slot
        return before, upload(client, "b.png", TINY)


def refuse_unsupported(client: Client, settings: object) -> object:
    return refusals(), upload(client, "b.png", b"plain text, not an image")


def refuse_too_large(client: Client, settings: object) -> object:
    settings.MAX_UPLOAD_BYTES = 10  # type: ignore[attr-defined]
    return refusals(), upload(client, "b.png", TINY)


def refuse_too_large_a_request(client: Client, settings: object) -> object:
    settings.MAX_UPLOAD_BYTES = 10  # type: ignore[attr-defined]
    return refusals(), upload(client, "b.png", TINY + bytes(MULTIPART_OVERHEAD))


def refuse_too_many_pixels(client: Client, settings: object) -> object:
    settings.MAX_UPLOAD_PIXELS = 1000  # type: ignore[attr-defined]
    return refusals(), upload(client, "big.png", hostile.png_bomb()[1])


def refuse_malformed(client: Client, settings: object) -> object:
    return refusals(), client.post("/upload/", {"picture": named_file("b.png", TINY)})


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("refuse", "status", "reason"),
    [
        (refuse_by_owner_rate, 429, "rate_limit_uploads_owner"),
        (refuse_by_address_rate, 429, "rate_limit_uploads_address"),
        (refuse_by_download_rate, 429, "rate_limit_downloads_owner"),
        (refuse_for_owner_queue, 429, "queue_owner"),
        (refuse_for_full_queue, 503, "queue_full"),
        (refuse_for_disk, 507, "disk_budget"),
        (refuse_when_busy, 503, "server_busy"),
        (refuse_unsupported, 415, "unsupported_type"),
        (refuse_too_large, 413, "too_large"),
        (refuse_too_large_a_request, 413, "too_large"),
        (refuse_too_many_pixels, 413, "too_large"),
        (refuse_malformed, 400, "bad_file"),
    ],
)
def test_each_refusal_is_counted_under_its_reason(
    client: Client, settings: object, refuse: object, status: int, reason: str
) -> None:
    visit(client)
    before, response = refuse(client, settings)  # type: ignore[operator]
    assert response.status_code == status, response.content
    after = refusals()
    assert {
        name: after[name] - before[name] for name in REFUSAL_REASONS if after[name] != before[name]
    } == {reason: 1}


@pytest.mark.django_db
def test_a_refusal_shows_in_the_scraped_metrics(client: Client, settings: object) -> None:
    settings.METRICS_TOKEN = TOKEN  # type: ignore[attr-defined]
    settings.RATE_LIMIT_UPLOADS_PER_ADDRESS = "1/1h"  # type: ignore[attr-defined]
    key = (("reason", "rate_limit_uploads_address"),)
    before = samples(scrape(client)["bgremover_refusals"], "bgremover_refusals_total")[key]
    visit(client)
    assert upload(client, "a.png", b"not an image").status_code == 415
    assert upload(client, "b.png", TINY).status_code == 429
    after = samples(scrape(client)["bgremover_refusals"], "bgremover_refusals_total")[key]
    assert after == before + 1


# ---- Operators' actions (what the admin's actions call)


@pytest.mark.django_db
def test_requeue_puts_a_failed_job_back_in_the_queue_and_enqueues_it(
    django_capture_on_commit_callbacks: object,
) -> None:
    job = make_job("a", status=Job.Status.FAILED, error="boom", attempts=1)
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        assert operator_actions.requeue(job)
    job.refresh_from_db()
    assert (job.status, job.stage, job.error) == (Job.Status.QUEUED, "queued", "")
    task = DBTaskResult.objects.get(pk=job.task_id)
    assert task.args_kwargs["args"] == [str(job.id)]
    assert task.task_path == "editor.tasks.process_job"


@pytest.mark.django_db
def test_requeue_leaves_a_finished_job_alone() -> None:
    job = make_job("a", status=Job.Status.DONE)
    assert not operator_actions.requeue(job)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db
def test_fail_ends_a_queued_job_with_the_operators_reason() -> None:
    job = make_job("a")
    assert operator_actions.fail(job)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert failure_reason(job.error) == "operator"
    assert not operator_actions.fail(job)  # already finished


@pytest.mark.django_db
def test_purge_deletes_the_image_its_jobs_and_its_files(web_settings: Path) -> None:
    image = make_image("a")
    job = Job.objects.create(image=image, status=Job.Status.DONE)
    default_storage.save(image.original.name, ContentFile(b"original"))
    default_storage.save(f"images/{image.id}/{job.id}/cutout.png", ContentFile(b"cutout"))
    keep = make_image("b")
    default_storage.save(keep.original.name, ContentFile(b"other"))
    operator_actions.purge(image)
    assert list(Image.objects.all()) == [keep]
    assert not Job.objects.filter(pk=job.pk).exists()
    assert not (web_settings / "images" / str(image.id)).exists()
    assert (web_settings / keep.original.name).is_file()


# ---- The admin


@pytest.mark.django_db
def test_without_admin_enabled_there_is_no_admin(client: Client, settings: object) -> None:
    assert settings.ADMIN_ENABLED is False  # type: ignore[attr-defined]
    assert client.get("/admin/").status_code == 404
    assert client.get("/admin/login/").status_code == 404


def admin_scenario() -> None:
    """Run in a subprocess with ADMIN_ENABLED=1 on a migrated database with a superuser
    ``op`` (Django set up before this module is imported): drive the admin through the test
    client and print what happened as JSON."""
    from django.conf import settings
    from django.test.utils import override_settings, setup_test_environment

    setup_test_environment()  # lets the test client's host in
    # Static files from the source tree, as in every web test (no collectstatic here).
    static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    override_settings(STORAGES={**settings.STORAGES, "staticfiles": static}).enable()
    failed = make_job("owner-f", status=Job.Status.FAILED, error="boom")
    queued = make_job("owner-q")
    doomed = make_image("owner-d")
    default_storage.save(doomed.original.name, ContentFile(b"original"))
    doomed_folder = Path(default_storage.path(doomed.original.name)).parent

    client = Client()
    anonymous = client.get("/admin/").status_code
    assert client.login(username="op", password="op-password")
    listing = client.get("/admin/editor/job/", {"status__exact": "failed"})
    search = client.get("/admin/editor/job/", {"q": str(queued.id)})
    by_owner = client.get("/admin/editor/image/", {"q": "owner-d"})
    requeue = client.post(
        "/admin/editor/job/",
        {"action": "requeue_jobs", "_selected_action": [str(failed.id)], "index": "0"},
    )
    failed.refresh_from_db()
    purge = client.post(
        "/admin/editor/image/",
        {"action": "purge_images", "_selected_action": [str(doomed.id)], "index": "0"},
    )
    shop = ApiKey.create("shop", monthly_quota=Decimal(10)).key
    shop.charge(Decimal("1.25"))
    keys = client.get("/admin/api/apikey/")
    revoke = client.post(
        "/admin/api/apikey/",
        {"action": "revoke_keys", "_selected_action": [str(shop.pk)], "index": "0"},
    )
    report = {
        "keys_listed": keys.status_code == 200 and "shop" in keys.text and "1.25" in keys.text,
        "key_revoked": revoke.status_code == 302 and ApiKey.objects.get(pk=shop.pk).revoked,
        "key_add_page": client.get("/admin/api/apikey/add/").status_code,
        "anonymous": anonymous,
        "listing": listing.status_code,
        "listed_failed": str(failed.id) in listing.text,
        "listed_queued": str(queued.id) in listing.text,
        "search_found": str(queued.id) in search.text,
        "search_found_other": str(failed.id) in search.text,
        "owner_found": str(doomed.id) in by_owner.text,
        "add_page": client.get("/admin/editor/job/add/").status_code,
        "change_post": client.post(
            f"/admin/editor/job/{queued.id}/change/", {"status": "done"}
        ).status_code,
        "delete_page": client.get(f"/admin/editor/job/{queued.id}/delete/").status_code,
        "requeue": requeue.status_code,
        "requeued_status": failed.status,
        "requeued_task": bool(failed.task_id)
        and DBTaskResult.objects.get(pk=failed.task_id).args_kwargs["args"] == [str(failed.id)],
        "purge": purge.status_code,
        "image_left": Image.objects.filter(pk=doomed.pk).exists(),
        "folder_left": doomed_folder.exists(),
        "queued_status": Job.objects.get(pk=queued.pk).status,
    }
    print(json.dumps(report))


def test_the_admin_for_operators(tmp_path: Path) -> None:
    """ADMIN_ENABLED off then on over one database: migrate works in both modes (the auth
    tables come with the admin), createsuperuser makes an operator, who lists jobs by state,
    finds by id and owner, re-queues a failed job (enqueued) and purges an image with its
    files, and cannot add, change or delete rows by hand."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "DB", "REDIS_URL", "ADMIN_ENABLED")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="bgremover.test_settings",
        TEST_DB="sqlite",
        TEST_REDIS="0",
        DATA_DIR=str(tmp_path),
        MEDIA_ROOT=str(tmp_path / "media"),
        ADMIN_ENABLED="0",
    )

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, *args],
            cwd=REPO_ROOT,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def tables() -> set[str]:
        with sqlite3.connect(tmp_path / "bgremover.sqlite3") as db:
            return {row[0] for row in db.execute("SELECT name FROM sqlite_master")}

    run("manage.py", "migrate", "--noinput")
    assert "editor_job" in tables()
    assert "auth_user" not in tables()
    run("manage.py", "migrate", "--noinput", ADMIN_ENABLED="1")
    assert {"auth_user", "django_admin_log"} <= tables()
    run(
        "manage.py",
        "createsuperuser",
        "--noinput",
        "--username=op",
        "--email=op@example.com",
        ADMIN_ENABLED="1",
        DJANGO_SUPERUSER_PASSWORD="op-password",
    )
    done = run(
        "-c",
        "import django; django.setup(); "
        "from tests.web.test_operations import admin_scenario; admin_scenario()",
        ADMIN_ENABLED="1",
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {
        "keys_listed": True,  # with this month's usage
        "key_revoked": True,
        "key_add_page": 403,  # keys are made by `manage.py apikey create`, shown once
        "anonymous": 302,  # to the login page
        "listing": 200,
        "listed_failed": True,
        "listed_queued": False,
        "search_found": True,
        "search_found_other": False,
        "owner_found": True,
        "add_page": 403,
        "change_post": 403,
        "delete_page": 403,
        "requeue": 302,
        "requeued_status": "queued",
        "requeued_task": True,
        "purge": 302,
        "image_left": False,
        "folder_left": False,
        "queued_status": "queued",
    }
