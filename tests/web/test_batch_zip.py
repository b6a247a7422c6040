"""The gallery's batch download (POST /images/zip/): the selected finished images rendered at
full resolution with one set of settings, as a ZIP built while it is sent; the real pipeline
and real weights make the results."""

from __future__ import annotations

import gc
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.test import Client

from editor.batch import BatchZip
from editor.forms import RenderForm
from editor.heavy import heavy_operation
from editor.models import Image
from editor.tasks import process_job
from editor.zipstream import ZipStream
from tests.web.client import decode, visit
from tests.web.factories import session_cookie

pytestmark = pytest.mark.django_db

DOG, FOX = "ecssd_0070", "ecssd_0235"
ZIP_URL = "/images/zip/"


def sod_photo(eval_dir: Path, stem: str) -> bytes:
    return (eval_dir / "sod" / "images" / f"{stem}.jpg").read_bytes()


def add_image(
    client: Client,
    name: str,
    data: bytes,
    capture: object,
    process: bool = True,
    **fields: str,
) -> Image:
    """Upload ``data`` as ``name`` (with any extra form ``fields``) and run its job."""
    with capture(execute=True):  # type: ignore[operator]
        response = client.post("/upload/", {"file": _named(name, data), **fields})
    assert response.status_code == 201, response.content
    if process:
        assert process_job.call(response.json()["job"]) == "done"
    return Image.objects.get(pk=response.json()["image"])


def _named(name: str, data: bytes) -> io.BytesIO:
    stream = io.BytesIO(data)
    stream.name = name
    return stream


def post_zip(client: Client, images: list[Image | str], **settings: str) -> object:
    ids = [str(image.pk) if isinstance(image, Image) else image for image in images]
    return client.post(ZIP_URL, {"image": ids, **settings})


def read_zip(response: object) -> zipfile.ZipFile:
    assert response.status_code == 200, getattr(response, "content", b"")[:500]
    assert response.streaming
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.testzip() is None
    return archive


@pytest.fixture
def capture(django_capture_on_commit_callbacks: object) -> object:
    return django_capture_on_commit_callbacks


@pytest.fixture
def three(client: Client, eval_dir: Path, real_weights: None, capture: object) -> list[Image]:
    """Two finished uploads both called photo.jpg (a dog, a fox) and a third not run yet."""
    visit(client)
    return [
        add_image(client, "photo.jpg", sod_photo(eval_dir, DOG), capture),
        add_image(client, "photo.jpg", sod_photo(eval_dir, FOX), capture),
        add_image(client, "later.jpg", sod_photo(eval_dir, DOG), capture, process=False),
    ]


def test_each_selected_image_is_one_entry_rendered_with_the_chosen_settings(
    client: Client, three: list[Image]
) -> None:
    dog, fox, unfinished = three
    response = post_zip(client, [dog, fox], background="color", color="#ff0000", format="jpeg")
    assert response["Content-Type"] == "application/zip"
    assert response["X-Batch-Count"] == "2"
    assert "bgremover-2-images.zip" in response["Content-Disposition"]
    archive = read_zip(response)
    # Same upload name twice: unique entry names, in the order selected.
    assert archive.namelist() == ["photo-color.jpg", "photo-color-2.jpg"]
    for name, image in zip(archive.namelist(), (dog, fox), strict=True):
        picture = decode(archive.read(name))
        assert picture.format == "JPEG" and picture.mode == "RGB"
        assert picture.size == (image.width, image.height)  # full resolution
        corner = np.asarray(picture)[:6, :6].reshape(-1, 3).mean(axis=0)
        assert corner[0] > 230 and corner[1] < 30 and corner[2] < 30, corner  # red background
    assert unfinished.latest_result() is None


def test_masks_and_crops_apply_to_every_entry(client: Client, three: list[Image]) -> None:
    dog, fox, _ = three
    archive = read_zip(post_zip(client, [dog, fox], output="mask"))
    assert archive.namelist() == ["photo-mask.png", "photo-mask-2.png"]
    for name in archive.namelist():
        assert decode(archive.read(name)).mode == "L"
    archive = read_zip(post_zip(client, [dog], crop="on", margin="0"))
    cropped = decode(archive.read("photo-cutout.png"))
    assert cropped.mode == "RGBA"
    assert cropped.width < dog.width or cropped.height < dog.height


def test_an_unfinished_image_is_left_out_with_a_note(client: Client, three: list[Image]) -> None:
    dog, _, unfinished = three
    archive = read_zip(post_zip(client, [unfinished, dog]))
    assert archive.namelist() == ["photo-cutout.png", "errors.txt"]
    note = archive.read("errors.txt").decode()
    assert "1 of the 2 selected images" in note
    assert "later.jpg: it has no finished result" in note


def test_an_image_deleted_while_the_zip_is_sent_is_skipped_with_a_note(
    client: Client, three: list[Image], web_settings: Path
) -> None:
    dog, fox, _ = three
    response = post_zip(client, [dog, fox], background="color", color="#00ff00")
    parts = iter(response.streaming_content)
    first = next(parts)  # the dog's entry, rendered and sent before the fox is looked at
    assert client.post(f"/images/{fox.pk}/delete/").status_code == 302
    archive = zipfile.ZipFile(io.BytesIO(first + b"".join(parts)))
    assert archive.testzip() is None
    assert archive.namelist() == ["photo-color.png", "errors.txt"]
    assert (
        "photo.jpg: it was deleted before it could be added" in archive.read("errors.txt").decode()
    )
    assert not (web_settings / "images" / str(fox.pk)).exists()


def test_other_owners_images_are_refused_like_unknown_ones(
    client: Client, three: list[Image], eval_dir: Path, capture: object
) -> None:
    dog = three[0]
    stranger = visit(Client())
    theirs = add_image(stranger, "secret.jpg", sod_photo(eval_dir, FOX), capture, process=False)
    unknown = "0b6f5a3e-8c1d-4c3e-9a43-2a4d1c9e7f10"
    refused_theirs = post_zip(client, [dog, theirs])
    refused_unknown = post_zip(client, [dog, unknown])
    assert refused_theirs.status_code == refused_unknown.status_code == 400
    assert "do not exist (any more) in this browser" in refused_theirs.json()["error"]
    assert (
        refused_theirs.json()["error"].replace(str(theirs.pk), unknown)
        == (refused_unknown.json()["error"])
    )
    # A browser without images (no session) gets the same answer for them.
    assert post_zip(Client(), [theirs]).status_code == 400


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"image": []}, "Select at least one image."),
        ({"image": ["not-an-id"]}, "'not-an-id' is not an image id."),
        ({"background": "color"}, "Pick a colour for the background."),
        ({"background": "color", "color": "red"}, "Colour must look like #1e90ff."),
        ({"format": "gif"}, "Select a valid choice"),
        ({"format": "jpeg"}, "JPEG cannot store transparency"),
        ({"margin": "500", "crop": "on"}, "less than or equal to 50"),
    ],
)
def test_bad_requests_get_400_with_a_reason(
    client: Client, uploaded: Image, fields: dict, message: str
) -> None:
    response = client.post(ZIP_URL, {"image": [str(uploaded.pk)], **fields})
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_too_many_images_are_refused(client: Client, uploaded: Image, settings: object) -> None:
    settings.ZIP_MAX_IMAGES = 1  # type: ignore[attr-defined]
    extra = Image.objects.create(
        owner=uploaded.owner, original_name="b.jpg", size_bytes=1, format="JPEG", width=1, height=1
    )
    response = post_zip(client, [uploaded, extra])
    assert response.status_code == 400
    assert response.json()["error"] == "A ZIP holds at most 1 images; 2 were selected."
    assert client.get(ZIP_URL).status_code == 405


def test_each_image_counts_as_one_download(
    client: Client, uploaded: Image, settings: object
) -> None:
    settings.RATE_LIMIT_DOWNLOADS = "3/10m"  # type: ignore[attr-defined]
    extra = Image.objects.create(
        owner=uploaded.owner, original_name="b.jpg", size_bytes=1, format="JPEG", width=1, height=1
    )
    others = [
        Image.objects.create(
            owner=uploaded.owner,
            original_name=f"{n}.jpg",
            size_bytes=1,
            format="JPEG",
            width=1,
            height=1,
        )
        for n in range(2)
    ]
    archive = read_zip(post_zip(client, [uploaded, extra]))  # 2 of 3
    assert archive.namelist() == ["errors.txt"]  # none finished: all listed in the note
    refused = post_zip(client, [uploaded, extra])  # 4 of 3
    assert refused.status_code == 429 and "Retry-After" in refused
    never = post_zip(client, [uploaded, extra, *others])
    assert never.status_code == 400
    assert "select at most 3" in never.json()["error"]


def test_settings_chosen_at_upload_are_kept_and_used_by_default(
    client: Client, eval_dir: Path, real_weights: None, capture: object
) -> None:
    visit(client)
    fields = {"settings-background": "color", "settings-color": "#0000ff", "settings-format": "png"}
    blue = add_image(client, "blue.jpg", sod_photo(eval_dir, DOG), capture, **fields)
    plain = add_image(client, "plain.jpg", sod_photo(eval_dir, FOX), capture)
    assert blue.render_settings == {"background": "color", "color": "#0000ff", "format": "png"}
    assert plain.render_settings == {}
    assert client.get("/gallery/").content.decode().count(">Upload settings</span>") == 1
    # The editor starts from them.
    page = client.get(f"/images/{blue.pk}/").content.decode()
    assert "&quot;color&quot;: &quot;#0000ff&quot;" in page or '"color": "#0000ff"' in page

    archive = read_zip(post_zip(client, [blue, plain], use_saved="on", output="cutout"))
    assert archive.namelist() == ["blue-color.png", "plain-cutout.png"]
    corner = np.asarray(decode(archive.read("blue-color.png")).convert("RGB"))[:6, :6]
    assert np.abs(corner.reshape(-1, 3).mean(axis=0) - (0, 0, 255)).max() < 20
    assert decode(archive.read("plain-cutout.png")).mode == "RGBA"
    # Unticked, the panel's settings apply to every image.
    archive = read_zip(post_zip(client, [blue], background="transparent"))
    assert archive.namelist() == ["blue-cutout.png"]


@pytest.mark.parametrize(
    ("colour", "message"),
    [
        (None, "Pick a colour for the background."),
        # Stored with the image as sent: a colour must be the whole value.
        ("#123456" + "0" * 100_000, "Colour must look like #1e90ff."),
    ],
)
def test_bad_settings_at_upload_store_nothing(
    client: Client, photo: bytes, colour: str | None, message: str
) -> None:
    visit(client)
    fields = {"file": _named("a.jpg", photo), "settings-background": "color"}
    if colour is not None:
        fields["settings-color"] = colour
    response = client.post("/upload/", fields)
    assert response.status_code == 400
    assert response.json()["error"] == f"Batch settings: {message}"
    assert not Image.objects.exists()


def test_the_panels_offer_every_render_field(client: Client, uploaded: Image) -> None:
    """The gallery's and the upload page's settings come from RenderForm itself, so a field
    it gains (canvas, shadow, …) is offered and applied in batch too."""
    gallery = client.get("/gallery/").content.decode()
    upload_page = client.get("/").content.decode()
    for name in RenderForm.base_fields:
        assert f'name="{name}"' in gallery, name
        assert f'name="settings-{name}"' in upload_page, name
    assert "Each image&#x27;s own background" in gallery
    # Unfinished: its checkbox is there for gallery.js to offer when the job ends, but
    # disabled (and hidden) until then.
    assert f'value="{uploaded.pk}" form="batch-form" disabled>' in gallery
    assert f'value="{uploaded.pk}" form="batch-form">' not in gallery
    assert "Can go in a ZIP once finished" in gallery


def test_entry_names_are_safe_and_unique_whatever_the_case() -> None:
    batch = BatchZip("owner", [], {}, use_saved=False)
    names = [
        batch._unique(name)
        for name in ["Photo-cutout.png", "photo-cutout.png", "a/b\\c.png", "errors.txt", ".."]
    ]
    assert names == ["Photo-cutout.png", "photo-cutout-2.png", "a_b_c.png", "errors-2.txt", "image"]


def test_the_zip_stream_holds_one_entry_at_a_time() -> None:
    stream = ZipStream()
    first = stream.add("é.png", b"\x89PNG" + bytes(100_000))
    assert stream._sink.buffer.getbuffer().nbytes == 0  # handed out, not kept
    second = stream.add("note.txt", b"text " * 1000, compress=True)
    archive = zipfile.ZipFile(io.BytesIO(first + second + stream.finish()))
    assert archive.namelist() == ["é.png", "note.txt"]
    assert archive.read("é.png") == b"\x89PNG" + bytes(100_000)
    # Local headers carry the sizes (no data descriptors), which the gallery reads.
    assert all(info.flag_bits & 0x08 == 0 for info in archive.infolist())
    assert int.from_bytes(first[18:22], "little") == 100_004


def test_an_archive_left_unfinished_is_dropped_quietly() -> None:
    # Its client went away: the garbage collector must not try to finish it (whatever it
    # collects first), which logged a traceback.
    unraisable: list[object] = []
    stream = ZipStream()
    stream.add("a.png", b"\x89PNG" + bytes(1000))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "unraisablehook", unraisable.append)
        stream._sink.buffer.close()  # as collected first
        del stream
        gc.collect()
    assert unraisable == []


def test_each_render_waits_for_a_heavy_operation_slot(
    client: Client, processed: Image, settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While every slot stays taken, the image is left out with a reason (the ZIP is already
    being sent: its status cannot turn into a 503)."""
    settings.HEAVY_OPERATIONS = 1  # type: ignore[attr-defined]
    settings.HEAVY_WAIT_S = 0  # type: ignore[attr-defined]
    monkeypatch.setattr("editor.batch.SLOT_WAIT_S", 0.2)
    with heavy_operation(None):  # someone else's render holds the only slot
        archive = read_zip(post_zip(client, [processed]))
    assert archive.namelist() == ["errors.txt"]
    assert "the server stayed busy with other images" in archive.read("errors.txt").decode()
    archive = read_zip(post_zip(client, [processed]))  # the slot is free again
    assert archive.namelist() == ["dog photo-cutout.png"]


def test_the_zip_needs_the_csrf_token(uploaded: Image) -> None:
    """It spends the owner's download allowance: another site must not make a browser ask."""
    owner = Client(enforce_csrf_checks=True)
    owner.cookies[settings.SESSION_COOKIE_NAME] = session_cookie(uploaded.owner)
    visit(owner)
    assert post_zip(owner, [uploaded]).status_code == 403
    token = owner.cookies[settings.CSRF_COOKIE_NAME].value
    allowed = owner.post(ZIP_URL, {"image": [str(uploaded.pk)]}, headers={"X-CSRFToken": token})
    assert read_zip(allowed).namelist() == ["errors.txt"]


def test_canvas_and_shadow_fields_apply_in_batch_too(client: Client, processed: Image) -> None:
    """RenderForm's canvas, subject size and shadow reach every entry: the batch renders
    through results.render_download like the editor's own download."""
    archive = read_zip(
        post_zip(
            client,
            [processed],
            canvas="square",
            scale="50",
            shadow="on",
            background="color",
            color="#ffffff",
        )
    )
    picture = decode(archive.read("dog photo-color.png"))
    assert picture.width == picture.height == max(processed.width, processed.height)
    pixels = np.asarray(picture.convert("RGB")).astype(int)
    assert (pixels[:4, :4] == 255).all()  # the white canvas around a half-size subject
    bad = post_zip(client, [processed], canvas="custom")
    assert bad.status_code == 400
    assert bad.json()["error"] == "Give the custom canvas's width and height in pixels."
