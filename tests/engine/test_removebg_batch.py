"""``manage.py removebg`` at volume: no secret needed, progress figures, --skip-existing,
--jobs (worker processes), and workers that die; real U²-NetP weights on real photos."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.core.management.base import CommandError
from PIL import Image

from bgremover.engine.pipeline import RemovalOptions, RenderOptions
from editor.management.batch_progress import BatchProgress, format_duration
from editor.management.batch_workers import WorkerPool
from editor.management.removebg_files import Job, Task
from tests.engine.removebg_support import removebg, small_copies

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def photos(tmp_path: Path, eval_dir: Path) -> list[Path]:
    """Three SOD photos downscaled to at most 320 px, in their own folder."""
    sources = sorted((eval_dir / "sod/images").glob("ecssd_*.jpg"))[:3]
    return small_copies(sources, tmp_path / "in", 320)


def clean_env(**extra: str) -> dict[str, str]:
    """Only what a fresh shell has: no SECRET_KEY, DEBUG, ALLOW_DEV_SECRET_KEY or settings."""
    keep = ("PATH", "HOME", "LANG", "TMPDIR", "BGREMOVER_SHARED", "CI")
    return {key: os.environ[key] for key in keep if key in os.environ} | extra


def manage(*args: object, env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *map(str, args)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        **kwargs,
    )


def test_removebg_runs_without_secret_key_or_debug(tmp_path, photos, u2netp_weights):
    out_dir = tmp_path / "out"
    weights = u2netp_weights
    done = manage("removebg", photos[0], "-o", out_dir, "--model-path", weights, env=clean_env())
    assert done.returncode == 0, done.stderr
    assert "1 image done, 0 failed in " in done.stdout
    with Image.open(out_dir / f"{photos[0].stem}.png") as result:
        assert result.mode == "RGBA" and result.size == Image.open(photos[0]).size


@pytest.mark.parametrize("command", [["migrate"], ["runserver", "--noreload"], ["check"]])
def test_other_commands_still_refuse_to_start_without_secret_key(command):
    done = manage(*command, env=clean_env())
    assert done.returncode != 0
    assert "SECRET_KEY is not set" in done.stderr


def test_the_web_application_still_refuses_to_start_without_secret_key():
    done = subprocess.run(
        [sys.executable, "-c", "import bgremover.asgi"],
        cwd=REPO_ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0 and "SECRET_KEY is not set" in done.stderr


def test_figures_count_rate_and_time_left():
    now = [100.0]
    progress = BatchProgress(10, clock=lambda: now[0])
    assert progress.figures() == "0/10"
    now[0] += 60
    assert progress.file_done(True) == "[1/10, 1.0 images/min, 9 min left]"
    assert progress.file_done(False) == "[2/10 (1 failed), 2.0 images/min, 4 min left]"
    for _ in range(8):
        progress.file_done(True)
    assert progress.figures() == "10/10 (1 failed), 10.0 images/min"  # nothing left


def test_files_refused_before_any_work_do_not_count_in_the_rate():
    now = [100.0]
    progress = BatchProgress(3, clock=lambda: now[0])
    now[0] += 0.001
    assert progress.file_done(False, worked=False) == "[1/3 (1 failed)]"  # no rate from it
    now[0] += 30
    assert progress.file_done(True) == "[2/3 (1 failed), 2.0 images/min, 30 s left]"


def test_durations_read_naturally():
    assert [format_duration(s) for s in (0.2, 45, 89, 600, 3600, 7500)] == [
        "1 s",
        "45 s",
        "89 s",
        "10 min",
        "1 h 00 min",
        "2 h 05 min",
    ]


def test_plain_output_gives_each_finished_file_the_figures(tmp_path, photos, u2netp_weights):
    stdout, stderr = removebg(
        *photos, "-o", tmp_path / "out", "--matting", "off", "--model-path", u2netp_weights
    )
    lines = stdout.splitlines()
    for index, (line, photo) in enumerate(zip(lines, photos, strict=False), 1):
        left = r", \d+ (s|min) left" if index < 3 else ""
        assert re.fullmatch(rf"\[{index}/3, [\d.]+ images/min{left}\] {photo.name} -> .*", line)
    assert re.fullmatch(r"3 images done, 0 failed in [\d.]+ s \([\d.]+ images/min\)", lines[3])
    assert stderr == ""


def test_a_terminal_gets_one_bar_with_rate_and_time_left_from_workers(
    tmp_path, photos, u2netp_weights
):
    """A real process whose stderr is a pseudo-terminal, with two worker processes."""
    main_end, terminal_end = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "removebg", *photos, "-o", tmp_path / "out"]
        + ["--jobs", "2", "--matting", "off", "--model-path", str(u2netp_weights)],
        cwd=REPO_ROOT,
        env=clean_env(COLUMNS="200"),
        stdout=subprocess.PIPE,
        stderr=terminal_end,
        text=True,
    )
    os.close(terminal_end)
    shown = b""
    while True:
        try:
            chunk = os.read(main_end, 4096)
        except OSError:  # EIO: the process is gone
            break
        if not chunk:
            break
        shown += chunk
    os.close(main_end)
    stdout = process.stdout.read()
    assert process.wait(timeout=300) == 0
    bar = shown.decode()
    assert "\n" not in bar.replace("\r\n", "\n").strip("\n")  # one line, drawn over itself
    assert "[--------------------] 0/3" in bar
    assert re.search(r"\] 1/3, [\d.]+ images/min, \d+ (s|min) left", bar)
    assert re.search(r"\[#{20}\] 3/3, [\d.]+ images/min", bar)
    assert bar.endswith("\r\033[K")  # wiped at the end
    assert "3 images done, 0 failed" in stdout


def test_skip_existing_resumes_an_interrupted_batch(tmp_path, photos, u2netp_weights):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    # The first photo's result is there; the second was being written when the batch stopped.
    (out_dir / f"{photos[0].stem}.png").write_bytes(b"kept as it is")
    (out_dir / f".{photos[1].stem}.png.part").write_bytes(b"half a file")
    stdout, _ = removebg(
        photos[0],
        photos[1],
        "-o",
        out_dir,
        "--skip-existing",
        "--matting",
        "off",
        "--model-path",
        u2netp_weights,
    )
    assert f"Skipping 1 input whose result is already in {out_dir}" in stdout
    assert "1 image done, 0 failed, 1 skipped (result already there) in " in stdout
    assert (out_dir / f"{photos[0].stem}.png").read_bytes() == b"kept as it is"
    with Image.open(out_dir / f"{photos[1].stem}.png") as result:
        assert result.mode == "RGBA"
    assert not (out_dir / f".{photos[1].stem}.png.part").exists()


def test_two_workers_write_the_same_bytes_as_one(tmp_path, photos, u2netp_weights):
    """Matting auto (the default), so that matted photos are compared too."""
    for jobs in ("1", "2"):
        removebg(*photos, "-o", tmp_path / jobs, "--jobs", jobs, "--model-path", u2netp_weights)
    for photo in photos:
        one = (tmp_path / "1" / f"{photo.stem}.png").read_bytes()
        assert (tmp_path / "2" / f"{photo.stem}.png").read_bytes() == one, photo.name


def test_a_bad_file_among_good_ones_with_two_workers(tmp_path, photos, u2netp_weights):
    corrupt = photos[0].parent / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    with pytest.raises(CommandError, match="1 of 4 inputs failed") as raised:
        removebg(
            photos[0].parent,
            "-o",
            tmp_path / "out",
            "--jobs",
            "2",
            "--matting",
            "off",
            "--model-path",
            u2netp_weights,
        )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{p.stem}.png" for p in photos
    )
    assert re.search(r"\] corrupt\.jpg: .+", raised.value.stderr)
    assert len(raised.value.stderr.splitlines()) == 1  # one line for the bad file
    assert "3 images done, 1 failed in " in raised.value.stdout


def test_a_worker_that_dies_fails_its_file_alone(tmp_path, photos, u2netp_weights):
    """The worker holding the first photo is killed (as the kernel's out-of-memory killer
    would); a new worker does the second."""

    def pool_workers() -> list[multiprocessing.process.BaseProcess]:
        # Only the pool's own: earlier tests in this process may have left other children
        # (engine processes, the matting helper).
        return [p for p in multiprocessing.active_children() if p.name == "bgremover-removebg"]

    def kill_first_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            children = pool_workers()
            if children:
                os.kill(children[0].pid, signal.SIGKILL)
                return
            time.sleep(0.01)

    tasks = [Task(Job(photo), tmp_path / f"{photo.stem}.png") for photo in photos[:2]]
    pool = WorkerPool(
        1, RemovalOptions(model_path=str(u2netp_weights), matting="off"), RenderOptions()
    )
    killer = threading.Thread(target=kill_first_worker)
    killer.start()
    outcomes = {task.job.path: outcome for task, outcome in pool.run(tasks)}
    killer.join()
    first, second = outcomes[photos[0]], outcomes[photos[1]]
    assert not first.ok and "killed by SIGKILL" in first.message
    assert second.ok and (tmp_path / f"{photos[1].stem}.png").is_file()
    assert not (tmp_path / f"{photos[0].stem}.png").exists()
    assert pool_workers() == []  # the pool stopped its workers
