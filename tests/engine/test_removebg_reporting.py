"""What ``manage.py removebg`` tells whoever runs it, with the real U²-NetP weights on real
photos: the progress line on a terminal, the exit status, and a real process's output."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import execute_from_command_line
from PIL import Image

from tests.engine import removebg_support
from tests.engine.removebg_support import removebg

photo_sources = removebg_support.photo_sources
photos = removebg_support.photos


def test_terminal_gets_a_single_updating_progress_line(
    tmp_path, photos, u2netp_weights, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "200")  # else the line is cut to the 80 columns assumed
    _, stderr = removebg(
        *photos,
        "-o",
        tmp_path / "out",
        "--matting",
        "off",
        "--model-path",
        u2netp_weights,
        tty=True,
    )
    assert "\n" not in stderr  # one line, rewritten in place, cleared at the end
    assert "\r" in stderr
    assert f"] 0/2  starting 0%  {photos[0].name}" in stderr
    figures = r"\] 1/2, [\d.]+ images/min, \d+ (s|min) left"
    assert re.search(rf"{figures}  segmenting \d+%  {photos[1].name}", stderr)
    assert stderr.endswith("\r\033[K")


def test_no_progress_line_when_not_a_terminal(tmp_path, photos, u2netp_weights):
    stdout, stderr = removebg(
        photos[0], "-o", tmp_path / "out", "--matting", "off", "--model-path", u2netp_weights
    )
    assert stderr == "" and "\r" not in stdout
    # the figures lead each file's line: the count, and the rate once known
    assert re.match(rf"\[1/1, [\d.]+ images/min\] {photos[0].name} -> ", stdout)


def test_command_line_exit_status_is_1_when_a_file_failed(tmp_path, photos, u2netp_weights, capsys):
    """What manage.py runs, in this process (a new one spends most of a minute loading and
    tracing the network): CommandError becomes exit status 1 after the summary."""
    bad = tmp_path / "in" / "empty.png"
    bad.write_bytes(b"")
    argv = [
        "manage.py",
        "removebg",
        str(bad),
        str(photos[1]),
        "-o",
        str(tmp_path / "out"),
        "--matting",
        "off",
        "--model-path",
        str(u2netp_weights),
    ]
    with pytest.raises(SystemExit) as exited:
        execute_from_command_line(argv)
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert "empty.png: " in captured.err
    assert "1 image done, 1 failed in " in captured.out
    assert (tmp_path / "out" / f"{photos[1].stem}.png").is_file()


def test_command_line_exit_status_is_0_when_all_files_are_done(
    tmp_path, photos, u2netp_weights, capsys
):
    argv = [
        "manage.py",
        "removebg",
        str(photos[0]),
        "-o",
        str(tmp_path / "out"),
        "--matting",
        "off",
        "--model-path",
        str(u2netp_weights),
    ]
    execute_from_command_line(argv)  # returns instead of raising SystemExit
    assert "1 image done, 0 failed in " in capsys.readouterr().out


@pytest.mark.parametrize("with_bad_file", [False, True])
def test_a_real_process_reports_everything_before_it_ends(
    tmp_path, photos, u2netp_weights, with_bad_file
):
    """manage.py ends a removebg process without the interpreter's teardown: what it printed
    to pipes, its exit status and its files must all still be there. (With matting, the
    command also runs its matting helper process.)"""
    inputs = [str(photos[0])]
    if with_bad_file:
        bad = tmp_path / "in" / "empty.png"
        bad.write_bytes(b"")
        inputs.insert(0, str(bad))
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    env.update(ALLOW_DEV_SECRET_KEY="1", DJANGO_SETTINGS_MODULE="bgremover.settings")
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "removebg",
            *inputs,
            "-o",
            str(tmp_path / "out"),
            "--matting",
            "on" if with_bad_file else "off",
            "--model-path",
            str(u2netp_weights),
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == (1 if with_bad_file else 0), done.stderr
    assert f"{photos[0].name} -> " in done.stdout
    assert f"1 image done, {int(with_bad_file)} failed in " in done.stdout
    if with_bad_file:
        assert "empty.png: The file is empty" in done.stderr
        assert "1 of 2 inputs failed" in done.stderr
    with Image.open(tmp_path / "out" / f"{photos[0].stem}.png") as written:
        assert written.mode == "RGBA" and written.size == Image.open(photos[0]).size
