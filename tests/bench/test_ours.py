"""The bench runs the engine with the engine variables read as the app's settings read them:
the same values, and the same refusals with the same messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.ours import engine_options
from bgremover.envvars import ConfigError


def test_engine_variables_become_the_bench_options(monkeypatch):
    monkeypatch.setenv("BGREMOVER_DEVICE", " cpu ")
    monkeypatch.setenv("BGREMOVER_PRECISION", " FP32 ")
    monkeypatch.setenv("BGREMOVER_TORCH_THREADS", "3")
    options = engine_options(Path("u2netp.pth"), "off")
    assert (options.device, options.precision, options.threads) == ("cpu", "fp32", 3)


def test_defaults_when_nothing_is_set(monkeypatch):
    for name in ("BGREMOVER_DEVICE", "BGREMOVER_PRECISION", "BGREMOVER_TORCH_THREADS"):
        monkeypatch.delenv(name, raising=False)
    options = engine_options(Path("u2netp.pth"))
    assert (options.device, options.precision, options.threads) == ("auto", "auto", None)


@pytest.mark.parametrize(
    "threads, message",
    [
        ("lots", "BGREMOVER_TORCH_THREADS must be an integer, got 'lots'"),
        ("0", "BGREMOVER_TORCH_THREADS must be at least 1, got 0"),
    ],
)
def test_unusable_thread_count_is_refused_as_the_app_refuses_it(monkeypatch, threads, message):
    monkeypatch.setenv("BGREMOVER_TORCH_THREADS", threads)
    with pytest.raises(ConfigError) as refused:
        engine_options(Path("u2netp.pth"))
    assert str(refused.value) == message
