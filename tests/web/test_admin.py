"""The operators' admin (editor.admin, api.admin): off by default, and in a subprocess with
ADMIN_ENABLED=1 (INSTALLED_APPS and the URLs are settled at start-up)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django_tasks_db.models import DBTaskResult

from api.models import ApiKey
from editor.models import Image, Job
from tests.conftest import REPO_ROOT
from tests.web.factories import make_image, make_job


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
        "from tests.web.test_admin import admin_scenario; admin_scenario()",
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
