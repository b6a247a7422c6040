"""``manage.py removebg``'s weights and engine settings: wrong, damaged or unknown weights stop
it before any work, and the app's settings reach the engine."""

import pytest
from django.core.management.base import CommandError

from tests.engine import removebg_support
from tests.engine.removebg_support import removebg

photo_sources = removebg_support.photo_sources
photos = removebg_support.photos


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
