"""Pages, uploads, ownership, downloads and deletion through Django's test client.

Processing runs the real pipeline with the real U²-NetP weights (no mocks): the task
function is called directly, as a worker would call it.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django_tasks_db.models import DBTaskResult
from PIL import Image as PILImage

from editor.models import Image, Job, Result
from editor.tasks import process_job
from tests.conftest import REPO_ROOT
from tests.web.client import PHOTO, decode, named_file, upload, visit
from tests.web.factories import make_image, make_job

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("real_weights")]


@pytest.fixture
def subject_mask(eval_dir: Path) -> np.ndarray:
    return np.asarray(PILImage.open(eval_dir / "sod" / "masks" / f"{PHOTO}.png").convert("L"))


# ---- Pages


def test_every_page_states_the_retention_period(client: Client, uploaded: Image) -> None:
    for url in ("/", "/gallery/", f"/images/{uploaded.id}/"):
        page = " ".join(client.get(url).content.decode().split())
        assert f"deleted automatically {settings.RETENTION_HOURS} hours after upload" in page, url


def test_first_upload_sets_an_httponly_samesite_session_cookie(
    client: Client, photo: bytes
) -> None:
    assert settings.SESSION_COOKIE_NAME not in client.get("/").cookies  # a visit: no session
    response = upload(client, "dog.jpg", photo)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"


def test_gallery_empty_state(client: Client) -> None:
    page = client.get("/gallery/").content.decode()
    assert "No images yet" in page
    assert 'id="gallery"' not in page


# ---- Uploads


def test_upload_creates_image_job_and_enqueues_task_on_commit(
    client: Client, photo: bytes, django_capture_on_commit_callbacks: object
) -> None:
    visit(client)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:  # type: ignore[operator]
        response = upload(client, "dog.jpg", photo)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued" and body["finished"] is False
    assert body["urls"]["socket"] == f"/ws/jobs/{body['job']}/"
    assert len(callbacks) == 1
    image = Image.objects.get(pk=body["image"])
    assert (image.width, image.height, image.format) == (400, 330, "JPEG")
    assert image.owner == client.session["owner"]
    assert image.original_name == "dog.jpg"
    assert default_storage.open(image.original.name).read() == photo
    assert image.expires_at > image.created_at
    task = DBTaskResult.objects.get()
    assert task.args_kwargs["args"] == [body["job"]]
    assert Job.objects.get(pk=body["job"]).task_id == str(task.id)


@pytest.mark.parametrize(
    ("pillow_format", "name", "stored_format"),
    [
        ("PNG", "photo.png", "PNG"),
        ("WEBP", "photo.webp", "WEBP"),
        ("GIF", "photo.gif", "GIF"),
        ("BMP", "photo.bmp", "BMP"),
        ("TIFF", "photo.tiff", "TIFF"),
        ("HEIF", "photo.heic", "HEIF"),
    ],
)
def test_every_accepted_format_uploads(
    client: Client, photo: bytes, pillow_format: str, name: str, stored_format: str
) -> None:
    pillow_heif.register_heif_opener()
    converted = io.BytesIO()
    decode(photo).save(converted, pillow_format)
    response = upload(client, name, converted.getvalue())
    assert response.status_code == 201, response.content
    image = Image.objects.get(pk=response.json()["image"])
    assert (image.format, image.width, image.height) == (stored_format, 400, 330)


def test_upload_needs_a_file_and_post(client: Client) -> None:
    assert client.post("/upload/", {}).json()["error"] == "Choose an image to upload."
    assert client.get("/upload/").status_code == 405


def test_post_without_csrf_token_is_refused(photo: bytes) -> None:
    client = Client(enforce_csrf_checks=True)
    visit(client)
    assert upload(client, "dog.jpg", photo).status_code == 403


# ---- Processing and results


def test_job_result_files_and_status(client: Client, processed: Image) -> None:
    job = processed.latest_job()
    assert job is not None and job.status == "done" and job.percent == 100
    status = client.get(f"/jobs/{job.id}/status/").json()
    assert status["status"] == "done" and status["finished"] is True
    result: Result = job.result
    cutout = decode(default_storage.open(result.cutout.name).read())
    assert cutout.mode == "RGBA" and cutout.size == (400, 330)
    assert result.subject_box and 0 <= result.subject_box[0] < result.subject_box[2] <= 400
    for name in ("thumb-original", "thumb-cutout", "preview-original", "preview-cutout", "mask"):
        response = client.get(f"/jobs/{job.id}/files/{name}")
        assert response.status_code == 200, name
        assert response["Cache-Control"].startswith("private")
        decode(b"".join(response.streaming_content))


def test_downloads_render_every_choice_at_full_resolution(
    client: Client, processed: Image, subject_mask: np.ndarray
) -> None:
    url = f"/images/{processed.id}/download/"
    png = client.get(url, {"format": "png"})
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert png["Content-Disposition"] == 'attachment; filename="dog photo-cutout.png"'
    alpha = np.asarray(decode(png.content).convert("RGBA"))[..., 3]
    assert alpha.shape == subject_mask.shape
    assert max(alpha[0, 0], alpha[0, -1], alpha[-1, 0], alpha[-1, -1]) <= 10
    assert np.median(alpha[subject_mask == 255]) >= 240

    jpeg = client.get(url, {"background": "color", "color": "#ff0000", "format": "jpeg"})
    assert jpeg.status_code == 200 and jpeg["Content-Type"] == "image/jpeg"
    pixels = np.asarray(decode(jpeg.content).convert("RGB")).astype(int)
    assert np.abs(pixels[2, 2] - [255, 0, 0]).max() <= 12

    mask = decode(client.get(url, {"output": "mask"}).content)
    assert mask.mode == "L" and np.array_equal(np.asarray(mask), alpha)

    preset = client.get(url, {"background": "preset", "preset": "sunset", "format": "webp"})
    assert preset.status_code == 200 and preset["Content-Type"] == "image/webp"
    assert decode(preset.content).mode == "RGB"

    blur = client.get(url, {"background": "blur", "blur": "30", "format": "jpeg"})
    assert blur.status_code == 200 and decode(blur.content).size == (400, 330)

    cropped = decode(client.get(url, {"crop": "on", "margin": "0"}).content)
    left, top, right, bottom = processed.latest_result().subject_box
    assert cropped.size == (right - left, bottom - top)


BAD_DOWNLOAD_OPTIONS = [
    ({"format": "jpeg"}, "JPEG cannot store transparency"),
    ({"background": "color", "color": "red"}, "Colour must look like #1e90ff."),
    ({"background": "color", "color": "zz#123456"}, "Colour must look like #1e90ff."),
    ({"background": "color", "color": "#1234567"}, "Colour must look like #1e90ff."),
    ({"background": "preset", "preset": "nope"}, "Select a valid choice"),
    ({"background": "custom"}, "Upload a background picture first."),
    ({"background": "blur", "blur": "500"}, "less than or equal to 100"),
]


def test_bad_download_options_get_clear_errors(client: Client, processed: Image) -> None:
    for params, message in BAD_DOWNLOAD_OPTIONS:
        response = client.get(f"/images/{processed.id}/download/", params)
        assert response.status_code == 400, params
        assert message in response.json()["error"], params


def test_download_before_the_result_exists(client: Client, uploaded: Image) -> None:
    response = client.get(f"/images/{uploaded.id}/download/")
    assert response.status_code == 409
    assert response.json()["error"] == "This image has no finished result yet."


def test_custom_background(client: Client, processed: Image) -> None:
    green = io.BytesIO()
    PILImage.new("RGB", (64, 48), (0, 200, 0)).save(green, "PNG")
    response = client.post(
        f"/images/{processed.id}/background/", {"file": named_file("bg.png", green.getvalue())}
    )
    assert response.status_code == 201
    assert client.get(response.json()["url"]).status_code == 200
    rendered = client.get(
        f"/images/{processed.id}/download/", {"background": "custom", "format": "png"}
    )
    corner = np.asarray(decode(rendered.content).convert("RGB"))[1, 1].astype(int)
    assert np.abs(corner - [0, 200, 0]).max() <= 3
    refused = client.post(
        f"/images/{processed.id}/background/", {"file": named_file("x.png", b"not an image")}
    )
    assert refused.status_code == 400 and "Not a supported image format" in refused.json()["error"]


def test_rerun_creates_a_new_job_with_the_matting_choice(client: Client, uploaded: Image) -> None:
    response = client.post(f"/images/{uploaded.id}/rerun/", {"matting": "off"})
    assert response.status_code == 201
    job = Job.objects.get(pk=response.json()["job"])
    assert job.matting == "off" and job.status == "queued" and job.image_id == uploaded.id
    assert client.post(f"/images/{uploaded.id}/rerun/", {"matting": "x"}).status_code == 400


def test_failed_job_reports_the_engine_reason(
    client: Client, photo: bytes, django_capture_on_commit_callbacks: object
) -> None:
    visit(client)
    response = upload(client, "dog.jpg", photo)
    image = Image.objects.get(pk=response.json()["image"])
    # The stored original is damaged after the upload (e.g. disk trouble): the engine says so.
    with default_storage.open(image.original.name, "wb") as original:
        original.write(photo[:200])
    assert process_job.call(response.json()["job"]) == "failed"
    status = client.get(f"/jobs/{response.json()['job']}/status/").json()
    assert status["status"] == "failed" and status["finished"] is True
    assert status["error"] and "Traceback" not in status["error"]


# ---- Gallery, ownership, deletion


def test_gallery_lists_newest_first_with_expiry(client: Client, uploaded: Image, photo: bytes):
    upload(client, "second.jpg", photo)
    page = client.get("/gallery/").content.decode()
    assert page.index("second.jpg") < page.index("dog photo.jpg")
    assert "Deleted in 23" in page


def test_gallery_and_upload_page_ask_the_same_queries_for_any_number_of_images(
    client: Client, processed: Image
) -> None:
    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    alone = queries("/gallery/"), queries("/")
    done = processed.latest_job()
    assert done is not None
    Job.objects.create(image=processed, status=Job.Status.FAILED)  # newest, with no result
    for _ in range(20):
        make_job(processed.owner, status=Job.Status.QUEUED)
    assert (queries("/gallery/"), queries("/")) == alone
    page = client.get("/gallery/").content.decode()
    assert page.count('class="gallery-card') == 21
    # The card shows the newest job's state, and the newest finished job's result.
    assert "Failed" in page and f"/jobs/{done.id}/files/thumb-cutout" in page


def test_the_gallery_lists_a_page_at_a_time(
    client: Client, uploaded: Image, settings: object
) -> None:
    settings.GALLERY_PAGE_SIZE = 2  # type: ignore[attr-defined]
    for n in range(4):
        make_image(uploaded.owner, f"newer {n}.jpg")

    def shown(**query: str) -> str:
        response = client.get("/gallery/", query)
        assert response.status_code == 200
        return response.content.decode()

    first = shown()
    assert first.count('class="gallery-card') == 2
    assert "newer 3.jpg" in first and "newer 2.jpg" in first and "newer 1.jpg" not in first
    assert "Page 1 of 3, 5 images in all" in first and 'data-total="5"' in first
    assert 'href="?page=2" rel="next">Older images' in first and 'rel="prev"' not in first
    last = shown(page="3")
    assert last.count('class="gallery-card') == 1 and "dog photo.jpg" in last
    assert 'href="?page=2" rel="prev">Newer images' in last and 'rel="next"' not in last
    cards = re.compile(r'class="gallery-card card" data-image="([^"]+)"')
    assert cards.findall(shown(page="99")) == cards.findall(last)  # past the end: the last page
    assert cards.findall(shown(page="nope")) == cards.findall(first)
    settings.GALLERY_PAGE_SIZE = 5  # type: ignore[attr-defined]
    assert 'class="pager"' not in shown()


@pytest.mark.parametrize("variable", ["GALLERY_PAGE_SIZE", "SLOW_CLIENT_TIMEOUT_S"])
def test_a_count_below_one_stops_the_start(tmp_path: Path, variable: str) -> None:
    env = {**os.environ, "ALLOW_DEV_SECRET_KEY": "1", "DATA_DIR": str(tmp_path)}
    check = subprocess.run(
        [sys.executable, "-c", "import bgremover.settings"],
        cwd=REPO_ROOT,
        env={**env, variable: "0"},
        capture_output=True,
        text=True,
    )
    assert check.returncode != 0
    assert f"{variable} must be at least 1, got 0" in check.stderr


def test_other_owners_get_404_everywhere(client: Client, uploaded: Image) -> None:
    stranger = visit(Client())
    job = uploaded.latest_job()
    assert job is not None
    for method, url in [
        ("get", f"/images/{uploaded.id}/"),
        ("get", f"/images/{uploaded.id}/download/"),
        ("get", f"/images/{uploaded.id}/files/original"),
        ("get", f"/jobs/{job.id}/status/"),
        ("get", f"/jobs/{job.id}/files/cutout"),
        ("post", f"/images/{uploaded.id}/delete/"),
        ("post", f"/images/{uploaded.id}/rerun/"),
        ("post", f"/images/{uploaded.id}/background/"),
    ]:
        assert getattr(stranger, method)(url).status_code == 404, url
    assert "dog photo.jpg" not in stranger.get("/gallery/").content.decode()
    assert Image.objects.filter(pk=uploaded.id).exists()


def test_media_is_not_served_publicly(client: Client, uploaded: Image) -> None:
    assert client.get(f"/media/{uploaded.original.name}").status_code == 404


def test_delete_removes_rows_and_every_stored_file(
    client: Client, processed: Image, web_settings: Path
) -> None:
    folder = web_settings / "images" / str(processed.id)
    assert any(folder.rglob("*.png"))
    response = client.post(f"/images/{processed.id}/delete/", HTTP_ACCEPT="application/json")
    assert json.loads(response.content) == {"deleted": str(processed.id)}
    assert not folder.exists()
    assert not Image.objects.exists() and not Job.objects.exists() and not Result.objects.exists()
    assert client.get(f"/images/{processed.id}/").status_code == 404


def test_job_of_an_image_deleted_before_it_ran_is_dropped(client: Client, uploaded: Image) -> None:
    job = uploaded.latest_job()
    assert job is not None
    client.post(f"/images/{uploaded.id}/delete/")
    assert process_job.call(str(job.id)) == "gone"


@pytest.mark.django_db(transaction=True)
def test_image_deleted_while_its_job_runs_leaves_no_files(
    client: Client, uploaded: Image, web_settings: Path
) -> None:
    job = uploaded.latest_job()
    assert job is not None
    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.append(process_job.call(str(job.id))))
    worker.start()
    deadline = time.monotonic() + 120
    while Job.objects.get(pk=job.pk).status == Job.Status.QUEUED:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    client.post(f"/images/{uploaded.id}/delete/")
    worker.join(timeout=300)
    assert outcome == ["gone"]
    assert not Result.objects.exists()
    leftovers = [p for p in (web_settings / "images").rglob("*") if p.is_file()]
    assert leftovers == []
