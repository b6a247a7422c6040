"""``manage.py removebg --hints``, with the real U²-NetP weights on real photos: a hint map
file or a folder of them marks what to keep and what to remove."""

from pathlib import Path

import numpy as np
import pytest
from django.core.management.base import CommandError
from PIL import Image

from tests.engine import removebg_support
from tests.engine.removebg_support import removebg

photo_sources = removebg_support.photo_sources
photos = removebg_support.photos


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
