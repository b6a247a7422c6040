"""Jobs in a separate ``manage.py db_worker`` process (no in-process workers): the job
still finishes and the page learns it by polling, since that process cannot reach the
server's in-memory channel layer."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import MANAGE, new_page, process, running_server, server_environment
from tests.browser.pages import FOX, photo, upload_with_picker, wait_done

pytestmark = pytest.mark.browser


def test_separate_db_worker_runs_the_job_and_the_page_shows_the_result(
    browser: Browser, tmp_path: Path, u2netp_weights: Path, eval_dir: Path
) -> None:
    env = server_environment(tmp_path, u2netp_weights.parent, workers=0)
    worker = [*MANAGE, "db_worker", "--no-startup-delay", "--interval", "0.5", "--no-reload"]
    with (
        running_server(env, "db-worker-server.log") as url,
        process(worker, env, "db-worker.log"),
    ):
        page = new_page(browser, url)
        try:
            upload_with_picker(page, [photo(eval_dir, FOX)])
            wait_done(page, f"{FOX}.jpg")
        finally:
            page.context.close()
