from pathlib import Path

import pytest
import torch

from bgremover.engine.model import U2NET, U2NETP


def test_official_u2netp_weights_load_strictly_in_the_official_key_order(u2netp_weights: Path):
    state = torch.load(u2netp_weights, map_location="cpu", weights_only=True)
    model = U2NETP()
    assert list(model.state_dict()) == list(state)
    model.load_state_dict(state, strict=True)


@pytest.mark.parametrize("cls, params", [(U2NETP, 1_131_181), (U2NET, 44_009_869)])
def test_parameter_counts_match_the_paper(cls, params):
    model = cls()
    trainable = sum(p.numel() for p in model.parameters())
    assert trainable == params


def test_forward_all_returns_seven_maps_of_input_size_in_unit_range():
    torch.manual_seed(0)
    model = U2NETP().eval()
    with torch.inference_mode():
        maps = model.forward_all(torch.randn(1, 3, 96, 80))
        fused = model(torch.randn(1, 3, 96, 80))
    assert len(maps) == 7
    for m in (*maps, fused):
        assert m.shape == (1, 1, 96, 80)
        assert float(m.min()) >= 0.0 and float(m.max()) <= 1.0
