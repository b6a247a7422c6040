"""The jobs API, /api/v1/jobs: submit one or many images, follow them, download results
rendered with remove.bg's options (charged once per job), delete them; every bad request is
refused in remove.bg's error shape with its status, and a refused submission stores nothing."""

from __future__ import annotations

import base64
import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from PIL import Image as PILImage

from api import render
from api.models import ApiJob, ApiKey, NewKey
from editor.models import Image, Job
from editor.results import delete_image
from editor.tasks import process_job
from tests.api.jobs_support import (
    JOBS,
    auth,
    named,
    nothing_stored,
    png,
    refused,
    stored_files,
    submit,
    submit_json,
)
from tests.api.local_servers import answer, serve
from tests.web.factories import make_job

pytestmark = pytest.mark.django_db

PHOTO = "ecssd_0070"  # a dog on grass (400 x 330)


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    cache.clear()  # rate-limit counters
    return tmp_path / "media"


@pytest.fixture
def new_key() -> NewKey:
    return ApiKey.create("shop")


@pytest.fixture
def key(new_key: NewKey) -> str:
    return new_key.text


@pytest.fixture
def photo(eval_dir: Path) -> bytes:
    return (eval_dir / "sod" / "images" / f"{PHOTO}.jpg").read_bytes()


@pytest.fixture
def real_weights(settings: Any, u2netp_weights: Path) -> None:
    settings.MODEL_DIR = str(u2netp_weights.parent)


def submitted_ids(response: Any) -> list[str]:
    assert response.status_code == 202, response.content
    return [job["id"] for job in response.json()["data"]]


def make_api_job(key: ApiKey, **fields: Any) -> ApiJob:
    job = make_job(key.owner, **fields)
    return ApiJob.objects.create(job=job, key=key, site_url="http://testserver")


# ---- The whole path, with the real pipeline


@pytest.mark.usefixtures("real_weights")
def test_a_submitted_photo_is_processed_and_its_result_downloaded_and_charged_once(
    client: Client,
    new_key: NewKey,
    photo: bytes,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(
            client, new_key.text, {"image_file": named(photo, "dog.jpg"), "matting": "off"}
        )
    assert response.status_code == 202, response.content
    (job,) = response.json()["data"]
    assert (job["status"], job["stage"], job["percent"], job["finished"]) == (
        "queued",
        "queued",
        0,
        False,
    )
    assert (job["name"], job["width"], job["height"], job["matting"]) == (
        "dog.jpg",
        400,
        330,
        "off",
    )
    assert job["urls"] == {
        "self": f"http://testserver/api/v1/jobs/{job['id']}",
        "result": None,
        "socket": f"ws://testserver/ws/api/jobs/{job['id']}/",
    }
    assert response["Location"] == job["urls"]["self"]
    assert response["X-RateLimit-Remaining"] == "59"
    # The image is the key's own, in the shared queue.
    assert Image.objects.get().owner == new_key.key.owner

    result = client.get(f"{JOBS}/{job['id']}/result", **auth(new_key.text))
    assert refused(result, 409, "job_not_finished")
    assert result["Retry-After"]

    assert process_job.call(job["id"]) == "done"
    state = client.get(f"{JOBS}/{job['id']}", **auth(new_key.text)).json()["data"]
    assert (state["status"], state["percent"], state["finished"], state["error"]) == (
        "done",
        100,
        True,
        None,
    )
    assert state["urls"]["result"] == f"http://testserver/api/v1/jobs/{job['id']}/result"
    assert state["finished_at"] and state["credits_charged"] is None

    download = client.get(
        f"{JOBS}/{job['id']}/result",
        {"format": "png", "bg_color": "#ffffff", "crop": "true"},
        **auth(new_key.text),
    )
    assert download.status_code == 200, download.content
    assert download["Content-Type"] == "image/png"
    assert download["X-Credits-Charged"] == "0.25"
    picture = PILImage.open(io.BytesIO(download.content))
    assert (picture.width, picture.height) == (
        int(download["X-Width"]),
        int(download["X-Height"]),
    )
    assert picture.width < 400  # cropped to the dog
    assert new_key.key.usage().credits == Decimal("0.25") and new_key.key.usage().images == 1

    # Downloading again (here the alpha mask, as JSON) charges nothing more.
    again = client.get(
        f"{JOBS}/{job['id']}/result",
        {"channels": "alpha"},
        HTTP_ACCEPT="application/json",
        **auth(new_key.text),
    )
    assert again.status_code == 200, again.content
    assert again["X-Credits-Charged"] == "0"
    mask = PILImage.open(io.BytesIO(base64.b64decode(again.json()["data"]["result_b64"])))
    assert mask.mode == "L" and mask.size == (400, 330)
    assert new_key.key.usage().credits == Decimal("0.25") and new_key.key.usage().images == 1
    assert (
        client.get(f"{JOBS}/{job['id']}", **auth(new_key.text)).json()["data"]["credits_charged"]
        == "0.25"
    )

    # Bad render options are refused like the synchronous call's.
    bad = client.get(f"{JOBS}/{job['id']}/result", {"format": "gif"}, **auth(new_key.text))
    assert "format" in refused(bad, 400, "invalid_parameters")


# ---- Submitting


def test_several_images_in_one_request_each_get_a_job(client: Client, key: str) -> None:
    files = [named(png(color=(n * 40, 0, 0)), f"p{n}.png") for n in range(3)]
    response = submit(client, key, {"image_file": files, "matting": "on"})
    ids = submitted_ids(response)
    assert len(ids) == 3 and "Location" not in response
    assert [job["name"] for job in response.json()["data"]] == ["p0.png", "p1.png", "p2.png"]
    assert set(Job.objects.values_list("matting", flat=True)) == {"on"}
    assert ApiJob.objects.filter(pk__in=ids).count() == 3
    assert response["X-RateLimit-Remaining"] == "57"  # three images counted


def test_base64_and_json_bodies_are_accepted(client: Client, key: str) -> None:
    encoded = base64.b64encode(png()).decode()
    assert len(submitted_ids(submit_json(client, key, {"image_file_b64": encoded}))) == 1
    as_form = client.post(
        JOBS,
        f"image_file_b64={encoded}&matting=off".replace("+", "%2B"),
        content_type="application/x-www-form-urlencoded",
        **auth(key),
    )
    assert len(submitted_ids(as_form)) == 1
    refused(submit_json(client, key, {"image_file_b64": "not base64!"}), 400, "invalid_parameters")


def test_the_list_is_this_keys_newest_first_a_page_at_a_time(client: Client, key: str) -> None:
    ids = []
    for n in range(3):
        ids += submitted_ids(submit(client, key, {"image_file": named(png(), f"{n}.png")}))
    other = ApiKey.create("other")
    submitted_ids(submit(client, other.text, {"image_file": named(png())}))
    make_job("some-browser")

    first = client.get(JOBS, {"limit": 2}, **auth(key)).json()
    assert [job["id"] for job in first["data"]] == ids[::-1][:2]
    assert first["meta"]["limit"] == 2 and first["meta"]["next"]
    second = client.get(first["meta"]["next"], **auth(key)).json()
    assert [job["id"] for job in second["data"]] == [ids[0]]
    assert second["meta"]["next"] is None
    everything = client.get(JOBS, **auth(key)).json()["data"]
    assert [job["id"] for job in everything] == ids[::-1]
    assert client.get(JOBS, {"status": "done"}, **auth(key)).json()["data"] == []
    for bad in ({"limit": 0}, {"limit": 101}, {"limit": "x"}, {"before": "nope"}, {"status": "x"}):
        refused(client.get(JOBS, bad, **auth(key)), 400, "invalid_parameters")
    gone = {"before": "00000000-0000-4000-8000-000000000000"}
    refused(client.get(JOBS, gone, **auth(key)), 400, "invalid_parameters")


# ---- Keys and ownership


def test_every_endpoint_needs_an_active_key(client: Client, new_key: NewKey, media: Path) -> None:
    job = make_api_job(new_key.key)
    revoked = ApiKey.create("revoked")
    revoked.key.revoke()
    urls = [JOBS, f"{JOBS}/{job.pk}", f"{JOBS}/{job.pk}/result"]
    for text in (None, "bgr_" + "x" * 40, revoked.text, new_key.text + "x"):
        for url in urls:
            refused(client.get(url, **auth(text)), 403, "auth_failed")
        refused(client.delete(urls[1], **auth(text)), 403, "auth_failed")
        refused(submit(client, text, {"image_file": named(png())}), 403, "auth_failed")
    bearer = client.get(urls[1], HTTP_AUTHORIZATION=f"Bearer {new_key.text}")
    assert bearer.status_code == 200
    assert ApiJob.objects.count() == 1 and Job.objects.count() == 1


def test_other_keys_jobs_browser_jobs_and_bad_ids_are_all_not_found(
    client: Client, key: str
) -> None:
    other = ApiKey.create("other")
    theirs = make_api_job(other.key, status=Job.Status.DONE)
    browser = make_job("a-browser-owner", status=Job.Status.DONE)
    # A row claiming a browser's job for this key still does not hand it over.
    mine = ApiKey.objects.get(name="shop")
    claimed = ApiJob.objects.create(
        job=make_job("a-browser-owner"), key=mine, site_url="http://testserver"
    )
    ids = [theirs.pk, browser.pk, claimed.pk, "not-a-uuid", "00000000-0000-4000-8000-000000000000"]
    titles = set()
    for job_id in ids:
        titles.add(refused(client.get(f"{JOBS}/{job_id}", **auth(key)), 404, "not_found"))
        refused(client.get(f"{JOBS}/{job_id}/result", **auth(key)), 404, "not_found")
        refused(client.delete(f"{JOBS}/{job_id}", **auth(key)), 404, "not_found")
    assert len(titles) == 1  # one answer for all: nothing to learn from it
    assert Job.objects.count() == 3  # nothing deleted


def test_delete_removes_the_image_and_its_files_and_a_second_delete_is_not_found(
    client: Client, key: str, media: Path
) -> None:
    (job_id,) = submitted_ids(submit(client, key, {"image_file": named(png())}))
    (kept,) = submitted_ids(submit(client, key, {"image_file": named(png())}))
    assert len(stored_files(media)) == 2
    response = client.delete(f"{JOBS}/{job_id}", **auth(key))
    assert response.status_code == 204 and response.content == b""
    assert not Job.objects.filter(pk=job_id).exists() and not ApiJob.objects.filter(pk=job_id)
    assert len(stored_files(media)) == 1
    refused(client.delete(f"{JOBS}/{job_id}", **auth(key)), 404, "not_found")
    refused(client.get(f"{JOBS}/{job_id}", **auth(key)), 404, "not_found")
    assert client.get(f"{JOBS}/{kept}", **auth(key)).status_code == 200


@pytest.mark.usefixtures("real_weights")
@pytest.mark.parametrize("deleted", ["before its files are read", "once it is rendered"])
def test_a_result_whose_image_is_deleted_while_it_renders_is_not_found(
    client: Client,
    key: str,
    photo: bytes,
    media: Path,
    monkeypatch: pytest.MonkeyPatch,
    deleted: str,
) -> None:
    (job_id,) = submitted_ids(submit(client, key, {"image_file": named(photo, "dog.jpg")}))
    assert process_job.call(job_id) == "done"
    real = render.render_call

    def deleting(call: render.CallRender) -> render.RenderedCall:
        if deleted == "before its files are read":
            delete_image(Image.objects.get())  # another client's DELETE, or the purge
            return real(call)
        rendered = real(call)
        delete_image(Image.objects.get())  # before it is charged
        return rendered

    monkeypatch.setattr(render, "render_call", deleting)
    refused(client.get(f"{JOBS}/{job_id}/result", **auth(key)), 404, "not_found")
    assert stored_files(media) == []


def test_a_failed_jobs_result_says_why(client: Client, new_key: NewKey) -> None:
    job = make_api_job(new_key.key, status=Job.Status.FAILED, error="The file is not an image.")
    data = client.get(f"{JOBS}/{job.pk}", **auth(new_key.text)).json()["data"]
    assert (data["status"], data["error"], data["urls"]["result"]) == (
        "failed",
        "The file is not an image.",
        None,
    )
    title = refused(client.get(f"{JOBS}/{job.pk}/result", **auth(new_key.text)), 409, "job_failed")
    assert "not an image" in title


def test_other_methods_are_refused(client: Client, key: str) -> None:
    response = client.put(JOBS, **auth(key))
    refused(response, 405, "method_not_allowed")
    assert response["Allow"] == "GET, POST"


def test_calls_keep_the_keys_images_when_they_are_kept_only_while_in_use(
    client: Client, new_key: NewKey, settings: Any
) -> None:
    settings.RETENTION_HOURS = 0
    job = make_api_job(new_key.key)
    soon = timezone.now() + timedelta(seconds=30)
    Image.objects.filter(pk=job.job.image_id).update(expires_at=soon)
    assert client.get(f"{JOBS}/{job.pk}", **auth(new_key.text)).status_code == 200
    moved = Image.objects.get(pk=job.job.image_id).expires_at
    assert moved > soon + timedelta(minutes=settings.RETENTION_IDLE_MINUTES - 1)


@pytest.mark.usefixtures("real_weights")
def test_render_options_sent_with_the_submission_are_the_results_defaults(
    client: Client,
    key: str,
    photo: bytes,
    media: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    bad = submit(client, key, {"image_file": named(photo), "bg_color": "not-a-colour"})
    assert "bg_color" in refused(bad, 400, "invalid_parameters")
    nothing_stored(media)

    with django_capture_on_commit_callbacks(execute=True):
        response = submit(
            client,
            key,
            {"image_file": named(photo), "matting": "off", "format": "jpg", "bg_color": "green"},
        )
    (job_id,) = submitted_ids(response)
    assert response.json()["data"][0]["options"] == {"format": "jpg", "bg_color": "green"}
    assert process_job.call(job_id) == "done"
    kept = client.get(f"{JOBS}/{job_id}/result", **auth(key))
    assert kept.status_code == 200, kept.content
    assert kept["Content-Type"] == "image/jpeg"
    corner = PILImage.open(io.BytesIO(kept.content)).convert("RGB").getpixel((0, 0))
    assert corner[1] > 100 and corner[0] < 60 and corner[2] < 60  # green background
    overridden = client.get(f"{JOBS}/{job_id}/result", {"format": "png"}, **auth(key))
    assert overridden["Content-Type"] == "image/png"
    # A background picture comes in the body of a POST.
    blue = png(400, 330, (0, 0, 255))
    posted = client.post(
        f"{JOBS}/{job_id}/result", {"bg_image_file": named(blue, "sky.png")}, **auth(key)
    )
    assert posted.status_code == 200, posted.content
    corner = PILImage.open(io.BytesIO(posted.content)).convert("RGB").getpixel((0, 0))
    assert corner[2] > 200 and corner[0] < 60 and corner[1] < 60
    unreadable = client.post(
        f"{JOBS}/{job_id}/result", {"bg_image_file": named(b"nope", "sky.png")}, **auth(key)
    )
    assert refused(unreadable, 415, "invalid_file_type").startswith("bg_image:")


def test_image_urls_are_fetched_when_turned_on_and_private_ones_refused(
    client: Client, key: str, settings: Any, media: Path
) -> None:
    settings.API_IMAGE_URLS = True
    picture = png(80, 60)
    with serve({"/shop/shoe.png": lambda handler: answer(handler, picture)}) as server:
        url = server.url("/shop/shoe.png")
        private = submit_json(client, key, {"image_url": "http://127.0.0.1/shop/shoe.png"})
        assert private.status_code == 400 and "image_url" in private.json()["errors"][0]["title"]
        assert server.requests == []
        nothing_stored(media)
        settings.API_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]
        response = submit(client, key, {"image_url": [url, url], "image_file": named(png())})
    jobs = response.json()["data"]
    assert [(job["name"], job["width"]) for job in jobs] == [
        ("photo.png", 64),
        ("shoe.png", 80),
        ("shoe.png", 80),
    ]
