"""What ``manage.py removebg`` takes as inputs and options, with the real U²-NetP weights on
real photos: folders, files that fail while the rest get done, and what it refuses."""

import pytest
from django.core.management.base import CommandError
from PIL import Image

from editor.management.removebg_files import write_atomically
from tests.engine import removebg_support
from tests.engine.removebg_support import removebg

photo_sources = removebg_support.photo_sources
photos = removebg_support.photos


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


def test_results_written_into_the_input_folder_never_overwrite_an_input(photos, u2netp_weights):
    folder = photos[0].parent
    same_stem = folder / f"{photos[0].stem}.png"  # the JPEG's result would be this file
    Image.open(photos[0]).save(same_stem)
    kept = same_stem.read_bytes()
    with pytest.raises(CommandError, match="2 of 3 inputs failed") as raised:
        removebg(folder, "-o", folder, "--matting", "off", "--model-path", u2netp_weights)
    assert f"the result would overwrite the input {same_stem.name}" in raised.value.stderr
    assert same_stem.read_bytes() == kept
    assert (folder / f"{photos[1].stem}.png").is_file()  # the third input's result


def test_a_link_planted_at_the_partial_files_name_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("the operator's file")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / ".a.png.part").symlink_to(victim)
    write_atomically(folder / "a.png", b"result")
    assert victim.read_text() == "the operator's file"
    assert (folder / "a.png").read_bytes() == b"result"
    assert sorted(p.name for p in folder.iterdir()) == ["a.png"]
