"""load_model: the resolution order, downloads on demand, the per-process cache, devices
and CPU threads."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from bgremover.engine import weights_catalogue, weights_loader
from bgremover.engine.errors import OptionsError, WeightsError, WeightsRemedy
from tests.engine import weights_support
from tests.engine.weights_support import leftovers, md5_of, u2netp_spec

hermetic = weights_support.hermetic  # autouse: no developer's models/, a fresh cache
random_u2netp = weights_support.random_u2netp
serve = weights_support.serve


def test_resolution_order_path_then_model_dir_then_env_then_repo_models(
    u2netp_weights, tmp_path, hermetic, monkeypatch
):
    given, model_dir, env_dir = tmp_path / "given.pth", tmp_path / "dir", tmp_path / "env"
    for directory in (model_dir, env_dir):
        directory.mkdir()
        shutil.copyfile(u2netp_weights, directory / "u2netp.pth")
    shutil.copyfile(u2netp_weights, given)
    shutil.copyfile(u2netp_weights, hermetic / "u2netp.pth")

    def chosen(**kwargs) -> Path:
        return weights_loader.load_model("u2netp", device="cpu", download=False, **kwargs).path

    assert chosen() == hermetic / "u2netp.pth"
    # The engine reads no environment: the app passes its setting as model_dir.
    monkeypatch.setenv("BGREMOVER_MODEL_DIR", str(env_dir))
    assert chosen() == hermetic / "u2netp.pth"
    assert chosen(model_dir=model_dir) == model_dir / "u2netp.pth"
    assert chosen(model_dir=model_dir, path=given) == given
    assert weights_catalogue.search_dirs(model_dir) == [model_dir, hermetic]


def test_no_implicit_download_for_the_default_model(serve, tmp_path):
    server = serve({})
    with pytest.raises(WeightsError, match="No model weights found") as raised:
        weights_loader.load_model(model_dir=tmp_path, base_url=server.url)
    assert server.requests == []
    # The engine states what is missing; the app words the fix (editor.weights_advice).
    assert (raised.value.remedy, raised.value.model) == (WeightsRemedy.MISSING, None)
    assert "manage.py" not in str(raised.value)


def test_named_model_is_downloaded_once_even_by_several_workers(
    serve, random_u2netp, tmp_path, monkeypatch
):
    server = serve({"u2netp.pth": random_u2netp.read_bytes()})
    monkeypatch.setitem(
        weights_catalogue.MODELS, "u2netp", u2netp_spec("unused", md5_of(random_u2netp))
    )
    server.delay = 0.3

    with pytest.raises(
        WeightsError, match=f"No weights for model 'u2netp': u2netp.pth is not in {tmp_path}"
    ) as raised:
        weights_loader.load_model("u2netp", model_dir=tmp_path, download=False, base_url=server.url)
    assert server.requests == []
    assert (raised.value.remedy, raised.value.model) == (WeightsRemedy.MISSING, "u2netp")

    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda _: weights_loader.load_model(
                    "u2netp", model_dir=tmp_path, device="cpu", base_url=server.url
                ),
                range(4),
            )
        )
    assert len(server.requests) == 1
    assert all(result is results[0] for result in results)
    assert results[0].path == tmp_path / "u2netp.pth"
    assert leftovers(tmp_path) == []


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(WeightsError, match="Unknown model 'u3net'. Known models: u2net, u2netp"):
        weights_loader.load_model("u3net")


# --- caching, devices, threads -------------------------------------------------------------


def test_load_model_is_cached_per_file_and_device(u2netp_weights, tmp_path):
    first = weights_loader.load_model(path=u2netp_weights, device="cpu")
    assert weights_loader.load_model("u2netp", path=u2netp_weights, device="cpu") is first
    copy = tmp_path / "u2netp.pth"
    shutil.copyfile(u2netp_weights, copy)
    assert weights_loader.load_model(path=copy, device="cpu") is not first
    weights_loader.clear_model_cache()
    assert weights_loader.load_model(path=u2netp_weights, device="cpu") is not first


def test_default_device_is_cuda_exactly_when_available(u2netp_weights):
    loaded = weights_loader.load_model(path=u2netp_weights)
    assert loaded.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert next(loaded.module.parameters()).device == loaded.device
    assert weights_loader.load_model(path=u2netp_weights, device="auto") is loaded


@pytest.mark.parametrize(
    "device, message",
    [
        ("warp-drive", "not a device name"),
        pytest.param(
            "cuda",
            "CUDA is not available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present"),
        ),
    ],
)
def test_unusable_device_is_an_options_error(device, message, u2netp_weights):
    with pytest.raises(OptionsError, match=message):
        weights_loader.load_model(path=u2netp_weights, device=device)


def test_device_is_never_read_from_the_environment(u2netp_weights, monkeypatch):
    monkeypatch.setenv("BGREMOVER_DEVICE", "warp-drive")
    assert weights_loader.load_model(path=u2netp_weights, device="cpu").device.type == "cpu"
    assert weights_loader.load_model(path=u2netp_weights).device.type in ("cpu", "cuda")


def test_configure_torch_threads_takes_the_number_given(monkeypatch):
    monkeypatch.setenv("BGREMOVER_TORCH_THREADS", "lots")  # ignored: the caller passes it
    before = torch.get_num_threads()
    try:
        assert weights_loader.configure_torch_threads(1) == 1
        assert torch.get_num_threads() == 1
        assert weights_loader.configure_torch_threads() >= 1
        for wrong in (0, -2, "2", True):
            with pytest.raises(OptionsError, match="Torch threads must be a positive"):
                weights_loader.configure_torch_threads(wrong)
    finally:
        torch.set_num_threads(before)
