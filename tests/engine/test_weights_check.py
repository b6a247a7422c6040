"""Weights files given by path or found in a directory: strict loads, and one clear error
for every kind of unusable file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from bgremover.engine import weights_loader
from bgremover.engine.errors import WeightsError, WeightsRemedy
from tests.engine import weights_support

hermetic = weights_support.hermetic  # autouse: no developer's models/, a fresh cache


def test_real_shared_weights_load_strictly_by_explicit_path(u2netp_weights):
    loaded = weights_loader.load_model(path=u2netp_weights, device="cpu")

    assert (loaded.name, loaded.spec.architecture, loaded.path) == (
        "u2netp",
        "u2netp",
        u2netp_weights,
    )
    assert loaded.device == torch.device("cpu")
    assert not loaded.module.training
    reference = torch.load(u2netp_weights, map_location="cpu", weights_only=True)
    state = loaded.module.state_dict()
    assert list(state) == list(reference)
    assert all(torch.equal(state[key], reference[key]) for key in reference)


def test_wrapped_and_data_parallel_checkpoints_load(u2netp_weights, tmp_path):
    reference = torch.load(u2netp_weights, map_location="cpu", weights_only=True)
    wrapped = tmp_path / "checkpoint.pth"
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in reference.items()}, "epoch": 3}, wrapped
    )
    loaded = weights_loader.load_model("u2netp", path=wrapped, device="cpu")
    assert torch.equal(loaded.module.outconv.weight, reference["outconv.weight"])


def _bad_weight_files(shared: Path, directory: Path) -> dict[str, tuple[Path, str]]:
    state = torch.load(shared, map_location="cpu", weights_only=True)
    renamed = dict(state)
    renamed["outconv.extra"] = renamed.pop("outconv.weight")
    files = {
        "wrong keys": (renamed, "1 missing (outconv.weight); 1 unexpected (outconv.extra)"),
        "not a state dict": ([1, 2, 3], "does not contain a model state dict"),
    }
    made = {}
    for label, (content, expected) in files.items():
        path = directory / f"{label.replace(' ', '-')}.pth"
        torch.save(content, path)
        made[label] = (path, expected)
    truncated = directory / "truncated.pth"
    truncated.write_bytes(shared.read_bytes()[: shared.stat().st_size // 2])
    made["truncated"] = (truncated, "may be truncated or corrupt")
    text = directory / "notes.pth"
    text.write_text("these are not weights\n" * 50)
    made["not torch"] = (text, "not a readable PyTorch weights file")
    empty = directory / "empty.pth"
    empty.touch()
    made["empty"] = (empty, "not a readable PyTorch weights file")
    made["missing"] = (directory / "absent.pth", "absent.pth does not exist")
    made["a directory"] = (directory, "is not a file")
    return made


@pytest.mark.parametrize(
    "case",
    ["wrong keys", "not a state dict", "truncated", "not torch", "empty", "missing", "a directory"],
)
def test_unusable_explicit_files_raise_one_clear_error(case, u2netp_weights, tmp_path):
    path, expected = _bad_weight_files(u2netp_weights, tmp_path)[case]
    with pytest.raises(WeightsError) as raised:
        weights_loader.load_model("u2netp", path=path, device="cpu")
    message = str(raised.value)
    assert str(path) in message
    assert expected in message
    assert message.endswith("Check the path you gave.")
    assert (raised.value.remedy, raised.value.model) == (WeightsRemedy.UNUSABLE_PATH, "u2netp")


def test_weights_of_the_other_architecture_are_named_as_such(u2netp_weights):
    with pytest.raises(
        WeightsError,
        match=r"does not hold u2net weights.*\d+ wrong shape.*"
        r"looks like u2netp weights",
    ):
        weights_loader.load_model("u2net", path=u2netp_weights, device="cpu")


def test_corrupt_file_in_a_model_dir_says_to_fetch_again(tmp_path):
    (tmp_path / "u2netp.pth").write_bytes(b"\x00" * 4096)
    with pytest.raises(WeightsError) as raised:
        weights_loader.load_model("u2netp", model_dir=tmp_path, device="cpu")
    message = str(raised.value)
    assert str(tmp_path / "u2netp.pth") in message
    assert "manage.py" not in message and "BGREMOVER_" not in message
    assert (raised.value.remedy, raised.value.model) == (WeightsRemedy.DAMAGED, "u2netp")


def test_file_of_unknown_name_is_recognised_by_its_layout(u2netp_weights, tmp_path):
    copy = tmp_path / "my-weights.pth"
    shutil.copyfile(u2netp_weights, copy)
    assert weights_loader.load_model(path=copy, device="cpu").name == "u2netp"
    text = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, text)
    with pytest.raises(
        WeightsError, match="other.pth holds neither U²-Net nor U²-NetP.*Check the path you gave."
    ):
        weights_loader.load_model(path=text, device="cpu")
