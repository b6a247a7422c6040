"""``manage.py removebg`` end to end, with the real U²-NetP weights on real photos."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.management import execute_from_command_line
from django.core.management.base import CommandError
from PIL import Image

from tests.engine.removebg_support import removebg, small_copies


@pytest.fixture(scope="module")
def photo_sources(eval_dir: Path) -> list[Path]:
    """Two photos whose ground-truth masks have background in every corner."""
    chosen = []
    for image in sorted((eval_dir / "sod/images").glob("ecssd_*.jpg")):
        mask = np.asarray(Image.open(eval_dir / "sod/masks" / f"{image.stem}.png"))
        if not mask[[0, 0, -1, -1], [0, -1, 0, -1]].any():
            chosen.append(image)
        if len(chosen) == 2:
            return chosen
    pytest.fail("fewer than two evaluation photos with background corners")


@pytest.fixture
def photos(tmp_path: Path, photo_sources: list[Path]) -> list[Path]:
    """The two photos downscaled to at most 400 px, in their own folder."""
    return small_copies(photo_sources, tmp_path / "in", 400)


def test_cutouts_are_rgba_pngs_named_after_the_inputs(tmp_path, photos, u2netp_weights):
    out_dir = tmp_path / "new" / "out"  # created, parents too
    stdout, stderr = removebg(*photos, "-o", out_dir, "--model-path", u2netp_weights)
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{p.stem}.png" for p in photos)
    for photo in photos:
        with Image.open(out_dir / f"{photo.stem}.png") as result, Image.open(photo) as source:
            assert result.format == "PNG" and result.mode == "RGBA"
            assert result.size == source.size
            alpha = np.asarray(result)[..., 3]
        assert alpha.min() == 0 and alpha.max() == 255  # a subject, and background removed
        assert f"{photo.name} -> {out_dir / (photo.stem + '.png')}" in stdout
    assert "2 images done, 0 failed in " in stdout
    assert stderr == ""


def test_mask_output_is_a_single_channel_png(tmp_path, photos, u2netp_weights):
    removebg(
        photos[0],
        "-o",
        tmp_path / "out",
        "--output",
        "mask",
        "--matting",
        "off",
        "--model-path",
        u2netp_weights,
    )
    with (
        Image.open(tmp_path / "out" / f"{photos[0].stem}.png") as mask,
        Image.open(photos[0]) as source,
    ):
        assert mask.format == "PNG" and mask.mode == "L" and mask.size == source.size
        values = np.asarray(mask)
    assert values[[0, 0, -1, -1], [0, -1, 0, -1]].max() < 32  # corners are background
    assert values.max() == 255


def test_jpeg_on_green_has_green_corners(tmp_path, photos, u2netp_weights):
    removebg(
        *photos,
        "-o",
        tmp_path / "out",
        "--format",
        "jpeg",
        "--background",
        "#00ff00",
        "--matting",
        "off",
        "--model-path",
        u2netp_weights,
    )
    for photo in photos:
        with Image.open(tmp_path / "out" / f"{photo.stem}.jpg") as result:
            assert result.format == "JPEG" and result.mode == "RGB"
            pixels = np.asarray(result).astype(int)
        corners = pixels[[0, 0, -1, -1], [0, -1, 0, -1]]
        assert np.abs(corners - [0, 255, 0]).max() < 40, corners


def test_a_folder_means_the_images_directly_inside_it(tmp_path, photos, u2netp_weights):
    folder = photos[0].parent
    (folder / "notes.txt").write_text("not an image, and not picked up")
    (folder / "sub").mkdir()
    Image.new("RGB", (32, 32)).save(folder / "sub" / "nested.png")  # not recursive
    upper = folder / "LOUD.JPG"
    upper.write_bytes(photos[1].read_bytes())
    stdout, _ = removebg(
        folder, "-o", tmp_path / "out", "--matting", "off", "--model-path", u2netp_weights
    )
    expected = sorted([f"{photos[0].stem}.png", f"{photos[1].stem}.png", "LOUD.png"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == expected
    assert "3 images done, 0 failed" in stdout


def test_bad_files_are_reported_by_name_and_the_others_still_get_done(
    tmp_path, photos, u2netp_weights
):
    corrupt = tmp_path / "in" / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    missing = tmp_path / "in" / "missing.jpg"
    with pytest.raises(CommandError, match="2 of 4 inputs failed") as raised:
        removebg(
            photos[0],
            corrupt,
            missing,
            photos[1],
            "-o",
            tmp_path / "out",
            "--matting",
            "off",
            "--model-path",
            u2netp_weights,
        )
    out_names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert out_names == sorted(f"{p.stem}.png" for p in photos)
    stderr = raised.value.stderr
    assert "corrupt.jpg: " in stderr
    assert "missing.jpg: no such file or folder" in stderr
    assert photos[0].name not in stderr and photos[1].name not in stderr
    assert "2 images done, 2 failed in " in raised.value.stdout


def test_crop_shrinks_to_the_subject_and_the_margin_grows_it(tmp_path, photos, u2netp_weights):
    sizes = {}
    for margin in ("0", "10%"):
        out_dir = tmp_path / f"crop{margin.strip('%')}"
        removebg(
            photos[0],
            "-o",
            out_dir,
            "--crop",
            margin,
            "--matting",
            "off",
            "--model-path",
            u2netp_weights,
        )
        with Image.open(out_dir / f"{photos[0].stem}.png") as result:
            sizes[margin] = result.size
    with Image.open(photos[0]) as source:
        full = source.size
    tight, loose = sizes["0"], sizes["10%"]
    assert tight[0] < full[0] or tight[1] < full[1]
    assert tight[0] <= loose[0] <= full[0] and tight[1] <= loose[1] <= full[1]
    assert loose != tight


def test_crop_without_a_margin_before_an_input_takes_the_input_as_a_file(
    tmp_path, photos, u2netp_weights
):
    stdout, _ = removebg(
        "--crop",
        photos[0],
        photos[1],
        "-o",
        tmp_path / "out",
        "--matting",
        "off",
        "--model-path",
        u2netp_weights,
    )
    assert "2 images done, 0 failed" in stdout


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


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "jpeg"], "JPEG cannot store transparency: add --background"),
        (["--format", "jpeg", "--background", "transparent"], "JPEG cannot store transparency"),
        (["--background", "#12"], "--background: .*not a hex colour"),
        (["--background", "blur:500"], "--background: .*1 to 100"),
        (["--crop", "lots"], "--crop takes a margin in percent"),
        (["--crop", "150%"], "between 0 and 100"),
        (["--output", "mask", "--format", "webp"], "always writes PNG"),
        (["--output", "mask", "--background", "#ffffff"], "no effect with --output mask"),
    ],
)
def test_bad_options_are_refused_before_any_work(tmp_path, photos, args, message):
    out_dir = tmp_path / "out"
    with pytest.raises(CommandError, match=message):
        removebg(photos[0], "-o", out_dir, *args)
    assert not out_dir.exists()


def test_output_folder_that_is_a_file_is_refused(tmp_path, photos):
    blocker = tmp_path / "out"
    blocker.write_text("")
    with pytest.raises(CommandError, match="is an existing file"):
        removebg(photos[0], "-o", blocker)


def test_two_inputs_with_the_same_stem_do_not_overwrite_each_other(
    tmp_path, photos, u2netp_weights
):
    twin = tmp_path / "other" / photos[0].with_suffix(".png").name
    twin.parent.mkdir()
    Image.open(photos[0]).save(twin)
    with pytest.raises(CommandError, match="1 of 2 inputs failed") as raised:
        removebg(
            photos[0],
            twin,
            "-o",
            tmp_path / "out",
            "--matting",
            "off",
            "--model-path",
            u2netp_weights,
        )
    assert f"{twin.name}: its result {photos[0].stem}.png is also the result of " in (
        raised.value.stderr
    )


def test_wrong_weights_stop_the_batch_with_the_engine_message(tmp_path, photos):
    bogus = tmp_path / "bogus.pth"
    bogus.write_bytes(b"not a checkpoint")
    with pytest.raises(CommandError, match="bogus.pth") as raised:
        removebg(*photos, "-o", tmp_path / "out", "--model-path", bogus)
    assert raised.value.stderr == "" and raised.value.stdout == ""  # before any file
    assert list((tmp_path / "out").iterdir()) == []


def test_a_damaged_file_in_the_model_dir_stops_the_batch_saying_what_to_do(
    tmp_path, photos, settings
):
    """The engine names the file and what is wrong with it; the command adds the app's fix."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "u2netp.pth").write_bytes(b"\x00" * 4096)
    settings.MODEL_DIR = str(models)
    with pytest.raises(CommandError) as raised:
        removebg(*photos, "-o", tmp_path / "out", "--model", "u2netp")
    message = str(raised.value)
    assert str(models / "u2netp.pth") in message
    assert message.endswith(
        "Delete it and run `python manage.py fetch_models u2netp`, "
        "or set BGREMOVER_MODEL_DIR to a directory with a good copy."
    )


def test_an_unknown_model_name_is_refused_before_any_work(tmp_path, photos):
    with pytest.raises(CommandError, match="Unknown model 'u3net'. Known models: u2net"):
        removebg(*photos, "-o", tmp_path / "out", "--model", "u3net")
    assert list((tmp_path / "out").iterdir()) == []


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


def test_no_tta_runs_one_pass_and_still_finds_the_subject(tmp_path, photos, u2netp_weights):
    out_dir = tmp_path / "out"
    removebg(
        photos[0],
        "-o",
        out_dir,
        "--output",
        "mask",
        "--matting",
        "off",
        "--no-tta",
        "--model-path",
        u2netp_weights,
    )
    single = np.asarray(Image.open(out_dir / f"{photos[0].stem}.png"))
    removebg(
        photos[0],
        "-o",
        tmp_path / "tta",
        "--output",
        "mask",
        "--matting",
        "off",
        "--model-path",
        u2netp_weights,
    )
    mirrored = np.asarray(Image.open(tmp_path / "tta" / f"{photos[0].stem}.png"))
    assert single.max() == 255 and single[0, 0] < 32
    assert not np.array_equal(single, mirrored)  # the mirrored pass really was left out
    assert ((single >= 128) == (mirrored >= 128)).mean() > 0.9


def _mask_of(path: Path) -> np.ndarray:
    with Image.open(path) as mask:
        return np.asarray(mask)


def _hint_map(photo: Path, keep_corner: bool = True) -> np.ndarray:
    """A map the size of ``photo``: keep in the top-left corner (background on these photos),
    remove in the middle (their subject)."""
    with Image.open(photo) as image:
        width, height = image.size
    hints = np.full((height, width), 128, np.uint8)
    if keep_corner:
        hints[:20, :20] = 255
    hints[height // 2 - 10 : height // 2 + 10, width // 2 - 10 : width // 2 + 10] = 0
    return hints


def test_a_hint_map_file_marks_what_to_keep_and_remove(tmp_path, photos, u2netp_weights):
    hints = tmp_path / "marks.png"
    Image.fromarray(_hint_map(photos[0])).save(hints)
    out_dir = tmp_path / "out"
    removebg(
        photos[0], "-o", out_dir, "--model-path", u2netp_weights, "--output", "mask",
        "--hints", hints,
    )  # fmt: skip
    alpha = _mask_of(out_dir / f"{photos[0].stem}.png")
    middle_y, middle_x = alpha.shape[0] // 2, alpha.shape[1] // 2
    assert (alpha[:20, :20] == 255).all()
    assert (alpha[middle_y - 10 : middle_y + 10, middle_x - 10 : middle_x + 10] == 0).all()


def test_a_hint_map_file_goes_with_one_input_only(tmp_path, photos, u2netp_weights):
    hints = tmp_path / "marks.png"
    Image.fromarray(_hint_map(photos[0])).save(hints)
    with pytest.raises(CommandError, match="single input"):
        removebg(*photos, "-o", tmp_path / "out", "--model-path", u2netp_weights, "--hints", hints)


def test_a_hint_folder_gives_the_inputs_that_have_a_map_their_marks(
    tmp_path, photos, u2netp_weights
):
    folder = tmp_path / "marks"
    folder.mkdir()
    Image.fromarray(_hint_map(photos[0])).save(folder / f"{photos[0].stem}.png")
    out_dir = tmp_path / "out"
    stdout, _ = removebg(
        *photos, "-o", out_dir, "--model-path", u2netp_weights, "--output", "mask",
        "--hints", folder,
    )  # fmt: skip
    assert "2 images done, 0 failed" in stdout
    marked, unmarked = (_mask_of(out_dir / f"{p.stem}.png") for p in photos)
    assert (marked[:20, :20] == 255).all()
    assert (unmarked[:20, :20] == 0).all()  # no map: background stays background


def test_a_bad_hint_map_fails_its_file_and_the_batch_goes_on(tmp_path, photos, u2netp_weights):
    folder = tmp_path / "marks"
    folder.mkdir()
    wrong_size = _hint_map(photos[0])[:-5]
    Image.fromarray(wrong_size).save(folder / f"{photos[0].stem}.png")
    in_colour = np.dstack([_hint_map(photos[1])] * 3)
    Image.fromarray(in_colour).save(folder / f"{photos[1].stem}.png")
    third = photos[0].with_name("third.jpg")
    third.write_bytes(photos[0].read_bytes())
    Image.fromarray(_hint_map(third)).save(folder / "third.png")
    out_dir = tmp_path / "out"
    with pytest.raises(CommandError, match="2 of 3 inputs failed") as raised:
        removebg(*photos, third, "-o", out_dir, "--model-path", u2netp_weights, "--hints", folder)
    height, width = wrong_size.shape
    stderr = raised.value.stderr
    assert (
        f"{photos[0].name}: hint map {photos[0].stem}.png is {width}×{height} but the photo is "
        f"{width}×{height + 5}" in stderr
    )
    assert f"{photos[1].name}: hint map {photos[1].stem}.png must be an 8-bit grey PNG" in stderr
    assert sorted(p.name for p in out_dir.iterdir()) == ["third.png"]


def test_engine_settings_reach_the_engine(tmp_path, photos, u2netp_weights, monkeypatch):
    """BGREMOVER_DEVICE, BGREMOVER_PRECISION, … (as settings) are what the engine is given."""
    import torch
    from django.test import override_settings

    from bgremover.engine import segment, weights_loader

    loads, precisions = [], []
    real_load, real_segmenter = weights_loader.load_model, segment.segmenter_for

    def load(*args, **kwargs):
        loads.append(kwargs)
        return real_load(*args, **kwargs)

    def segmenter(loaded, precision="auto"):
        precisions.append(precision)
        return real_segmenter(loaded, precision)

    monkeypatch.setattr(weights_loader, "load_model", load)
    monkeypatch.setattr(segment, "segmenter_for", segmenter)
    threads = torch.get_num_threads()  # the count it has: nothing changes for later tests
    with override_settings(
        DEVICE="cpu", PRECISION="fp32", TORCH_THREADS=threads, WEIGHTS_URL="http://mirror.invalid"
    ):
        removebg(photos[0], "-o", tmp_path / "out", "--model-path", u2netp_weights, "-j", "1")
    assert len(loads) == 2  # the command's early load, then the pipeline's
    for kwargs in loads:
        assert kwargs["device"] == "cpu"
        assert kwargs["threads"] == threads
        assert kwargs["base_url"] == "http://mirror.invalid"
    assert precisions == ["fp32"]
