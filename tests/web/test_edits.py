"""Touch-ups through the web app: saving edits, what previews, thumbnails and downloads show
with them, undo to the automatic result, re-runs keeping them, and every bad case.

Jobs run the real pipeline with the real weights; smart marks run the real engine.hints.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.test import Client

from editor.edits import save_edits
from editor.models import Image, Job, JobGone
from editor.storage_check import check_storage
from editor.tasks import process_job
from tests.web.client import decode, stored_files, visit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("real_weights")]

# The test photo is 400×330: a dog in the middle on grass that reaches every corner.
CENTRE = (200, 170)
CORNER = (30, 30)


def post_edits(client: Client, image: Image, edits: object, version: int = 0) -> object:
    body = json.dumps({"version": version, "edits": edits})
    return client.post(f"/images/{image.id}/edits/", body, content_type="application/json")


def stroke(tool: str, points: list[tuple[float, float]], radius: float = 12) -> dict:
    return {"tool": tool, "radius": radius, "points": [list(point) for point in points]}


def download_alpha(client: Client, image: Image, **options: str) -> np.ndarray:
    response = client.get(f"/images/{image.id}/download/", options)
    assert response.status_code == 200, response.content
    return np.asarray(decode(response.content).convert("RGBA"))[..., 3]


def served(client: Client, url: str) -> np.ndarray:
    response = client.get(url)
    assert response.status_code == 200
    data = b"".join(response.streaming_content) if response.streaming else response.content
    return np.asarray(decode(data).convert("RGBA"))


def test_erase_and_restore_change_every_download_and_preview(
    client: Client, processed: Image
) -> None:
    before = download_alpha(client, processed)
    x, y = CENTRE
    assert before[y, x] > 200 and before[CORNER[1], CORNER[0]] < 20
    edits = [stroke("erase", [CENTRE, (x + 20, y)]), stroke("restore", [CORNER])]
    response = post_edits(client, processed, edits)
    assert response.status_code == 200, response.content
    state = response.json()
    assert state["version"] == 1 and state["edits"][0]["tool"] == "erase"

    after = download_alpha(client, processed)
    assert after[y, x] == 0 and after[y, x + 20] == 0
    assert after[CORNER[1], CORNER[0]] == 255
    far = np.ones_like(before, dtype=bool)
    far[y - 40 : y + 40, x - 40 : x + 70] = False
    far[: CORNER[1] + 40, : CORNER[0] + 40] = False
    assert np.array_equal(after[far], before[far])  # untouched elsewhere
    mask = np.asarray(decode(client.get(f"/images/{processed.id}/download/?output=mask").content))
    assert np.array_equal(mask, after)
    job = processed.latest_job()
    direct = client.get(f"/jobs/{job.id}/files/mask")
    assert np.array_equal(np.asarray(decode(direct.content)), after)

    preview = served(client, state["cutout"])
    scale = preview.shape[1] / processed.width
    assert preview[round(y * scale), round(x * scale), 3] == 0
    thumb = served(client, f"/jobs/{job.id}/files/thumb-cutout")
    original_thumb = served(client, f"/jobs/{job.id}/files/thumb-original")
    assert thumb.shape[:2] == original_thumb.shape[:2]
    page = client.get(f"/images/{processed.id}/")
    assert b"preview-cutout?v=1" in page.content


def test_smart_marks_are_followed_in_downloads(client: Client, processed: Image) -> None:
    edits = [stroke("remove", [CENTRE]), stroke("keep", [CORNER])]
    response = post_edits(client, processed, edits)
    assert response.status_code == 200, response.content
    alpha = download_alpha(client, processed, background="color", color="#ff0000", format="png")
    assert alpha.min() == 255  # a colour background: opaque everywhere
    alpha = download_alpha(client, processed)
    x, y = CENTRE
    assert alpha[y, x] == 0 and alpha[CORNER[1], CORNER[0]] == 255


def test_undo_to_nothing_brings_back_the_automatic_result_and_its_files(
    client: Client, processed: Image, web_settings: Path
) -> None:
    automatic = download_alpha(client, processed)
    files_before = stored_files(web_settings)
    assert post_edits(client, processed, [stroke("erase", [CENTRE])]).status_code == 200
    assert len(stored_files(web_settings)) == len(files_before) + 2  # preview and thumbnail
    response = post_edits(client, processed, [], version=1)
    assert response.status_code == 200 and response.json()["version"] == 2
    assert np.array_equal(download_alpha(client, processed), automatic)
    assert stored_files(web_settings) == files_before
    result = processed.latest_result()
    assert result.size_bytes == sum(stored.size for stored in result.files())


def test_a_stale_editor_gets_409_and_changes_nothing(client: Client, processed: Image) -> None:
    assert post_edits(client, processed, [stroke("erase", [CENTRE])]).status_code == 200
    stale = post_edits(client, processed, [stroke("restore", [CORNER])], version=0)
    assert stale.status_code == 409
    assert "another window" in stale.json()["error"] and stale.json()["version"] == 1
    processed.refresh_from_db()
    assert processed.edits_version == 1 and processed.edits[0]["tool"] == "erase"


BAD_EDITS = [
    (b"not json", 'Send the edits as JSON: {"version": 0, "edits": [...]}.'),
    (json.dumps({"version": 0, "edits": {"tool": "erase"}}), "Edits must be a list."),
    (json.dumps({"edits": []}), "version: This field is required."),
    (json.dumps({"version": -1, "edits": []}), "version: Ensure this value is greater"),
    (json.dumps({"version": 0, "edits": [stroke("paint", [CENTRE])]}), "the tool must be"),
    (json.dumps({"version": 0, "edits": [stroke("erase", [(900, 10)])]}), "lies outside"),
    (json.dumps({"version": 0, "edits": [stroke("erase", [(-50, 10)])]}), "lies outside"),
    (json.dumps({"version": 0, "edits": [stroke("erase", [CENTRE], 0)]}), "radius must be"),
    (json.dumps({"version": 0, "edits": [stroke("erase", [])]}), "needs a list of points"),
    (json.dumps({"version": 0, "edits": [{"tool": "erase", "radius": 5}]}), "needs a list"),
    (
        json.dumps({"version": 0, "edits": [stroke("erase", [("1", 2)])]}),
        "must be a number",
    ),
    (json.dumps({"version": 0, "edits": [{"tool": "object", "point": [1]}]}), "a pair"),
    (json.dumps({"version": 0, "edits": [stroke("keep", [CENTRE])] * 301}), "Too many edits"),
    (
        json.dumps({"version": 0, "edits": [stroke("erase", [CENTRE] * 5001)]}),
        "more than 5000 points",
    ),
    (
        json.dumps({"version": 0, "edits": [stroke("erase", [CENTRE] * 4000)] * 13}),
        "Too many points",
    ),
    # Each of these strokes covers the whole photo: 26 of them, 26 times over.
    (json.dumps({"version": 0, "edits": [stroke("restore", [CENTRE], 200)] * 26}), "brushing"),
    # Python's JSON reader refuses these with other errors than a syntax error.
    (b'{"version": ' + b"1" * 5000 + b', "edits": []}', "Send the edits as JSON"),
    (b'{"version": 0, "edits": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "as JSON"),
]


@pytest.mark.parametrize(("body", "message"), BAD_EDITS)
def test_bad_edits_get_a_clear_400_and_change_nothing(
    client: Client, processed: Image, body: bytes | str, message: str
) -> None:
    assert post_edits(client, processed, [stroke("erase", [CENTRE])]).status_code == 200
    before = download_alpha(client, processed)
    response = client.post(f"/images/{processed.id}/edits/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]
    processed.refresh_from_db()
    assert processed.edits_version == 1
    assert np.array_equal(download_alpha(client, processed), before)


def test_edits_need_a_result_an_owner_and_a_post(client: Client, uploaded: Image) -> None:
    early = post_edits(client, uploaded, [])
    assert early.status_code == 409 and "no finished result" in early.json()["error"]
    stranger = visit(Client())
    assert post_edits(stranger, uploaded, []).status_code == 404
    assert client.get(f"/images/{uploaded.id}/edits/").status_code == 405


def test_edits_on_an_image_deleted_meanwhile_keep_nothing(
    client: Client, processed: Image, web_settings: Path
) -> None:
    result = processed.latest_result()
    stale = Image.objects.get(pk=processed.pk)
    processed.delete()
    with pytest.raises(JobGone):
        save_edits(stale, result, (), 0)
    assert post_edits(client, stale, []).status_code == 404
    assert not [name for name in stored_files(web_settings) if "edited" in name]


def test_a_rerun_keeps_the_edits(
    client: Client, processed: Image, django_capture_on_commit_callbacks: object
) -> None:
    assert post_edits(client, processed, [stroke("erase", [CENTRE])]).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        response = client.post(f"/images/{processed.id}/rerun/", {"matting": "off"})
    assert response.status_code == 201
    assert process_job.call(response.json()["job"]) == "done"
    rerun = Job.objects.get(pk=response.json()["job"])
    assert rerun.result.shows_edits(Image.objects.get(pk=processed.pk))
    x, y = CENTRE
    assert download_alpha(client, processed)[y, x] == 0
    state = json.loads(
        client.get(f"/images/{processed.id}/")
        .content.split(b'id="editor-config"')[1]
        .split(b">", 1)[1]
        .split(b"</script>")[0]
    )
    assert state["result"]["edits"]["version"] == 1
    assert str(rerun.id) in state["result"]["cutout"]


def test_removing_an_object_clears_it(client: Client, processed: Image) -> None:
    page = client.get(f"/images/{processed.id}/")
    config = json.loads(
        page.content.split(b'id="editor-config"')[1].split(b">", 1)[1].split(b"</script>")[0]
    )
    parts = config["result"]["edits"]["parts"]
    assert parts and not parts[0]["removed"]
    dog = parts[0]
    response = post_edits(client, processed, [{"tool": "object", "point": dog["point"]}])
    assert response.status_code == 200
    assert response.json()["parts"][0]["removed"] is True
    alpha = download_alpha(client, processed)
    left, top, right, bottom = dog["box"]
    assert alpha[top:bottom, left:right].max() < 128


def test_edits_have_their_own_rate_limit(
    client: Client, processed: Image, settings: object
) -> None:
    settings.RATE_LIMIT_EDITS = "2/1h"  # type: ignore[attr-defined]
    assert post_edits(client, processed, []).status_code == 200
    assert post_edits(client, processed, [], version=1).status_code == 200
    refused = post_edits(client, processed, [], version=2)
    assert refused.status_code == 429 and "Too many edits" in refused.json()["error"]
    assert int(refused["Retry-After"]) > 0


def test_storage_check_knows_the_edited_files(client: Client, processed: Image) -> None:
    assert post_edits(client, processed, [stroke("erase", [CENTRE])]).status_code == 200
    report = check_storage(default_storage, min_age=timedelta(0))
    assert not report.orphans and not report.missing
