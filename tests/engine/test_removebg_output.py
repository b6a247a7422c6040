"""``manage.py removebg``'s output, end to end with the real U²-NetP weights on real photos:
cutouts, masks, JPEG on a colour, cropping, and a single pass without TTA."""

import numpy as np
from PIL import Image

from tests.engine import removebg_support
from tests.engine.removebg_support import removebg

photo_sources = removebg_support.photo_sources
photos = removebg_support.photos


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
