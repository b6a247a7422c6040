"""The registry of known checkpoints and the choice of the default model."""

from __future__ import annotations

import shutil

import torch

from bgremover.engine import weights_catalogue, weights_loader
from bgremover.engine.model import U2NET
from tests.engine import weights_support

hermetic = weights_support.hermetic  # autouse: no developer's models/, a fresh cache


def test_default_is_u2netp_when_only_it_is_present(u2netp_weights, tmp_path):
    shutil.copyfile(u2netp_weights, tmp_path / "u2netp.pth")
    assert weights_catalogue.default_model_name(tmp_path) == "u2netp"
    assert weights_loader.load_model(model_dir=tmp_path, device="cpu").name == "u2netp"
    assert weights_catalogue.available_models(tmp_path) == [
        ("u2net", None),
        ("u2netp", tmp_path / "u2netp.pth"),
        ("u2net_human_seg", None),
    ]


def test_default_prefers_u2net_when_its_weights_are_present(u2netp_weights, tmp_path):
    shutil.copyfile(u2netp_weights, tmp_path / "u2netp.pth")
    torch.manual_seed(0)
    torch.save(U2NET().state_dict(), tmp_path / "u2net.pth")  # 176 MB, random but valid layout
    loaded = weights_loader.load_model(model_dir=tmp_path, device="cpu")
    assert (loaded.name, loaded.path) == ("u2net", tmp_path / "u2net.pth")
    assert isinstance(loaded.module, U2NET)


def test_registry_matches_the_published_facts():
    u2net, u2netp, human = (
        weights_catalogue.MODELS[n] for n in ("u2net", "u2netp", "u2net_human_seg")
    )
    assert (u2net.architecture, u2net.md5) == ("u2net", "09fb4e49b7f785c9f855baf94916840a")
    assert (u2netp.architecture, u2netp.md5) == ("u2netp", "e4f636406ca4e2af789941e7f139ee2e")
    assert "1rbSTGKAE-MTxBYHd-51l2hMOQPT_7EPy" in u2netp.url
    assert human.architecture == "u2net" and "1m_Kgs91b21gayc2XLW0ou8yugAIadWVP" in human.url
    assert all(spec.filename == f"{name}.pth" for name, spec in weights_catalogue.MODELS.items())
    assert set(weights_catalogue.DEFAULT_CANDIDATES) <= set(weights_catalogue.MODELS)
