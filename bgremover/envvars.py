"""Reading the environment variables the app is configured with: one parser for
``bgremover.settings`` and for tools that run the engine without Django (``bench.ours``), so
both accept the same values and refuse the rest with the same messages.

Framework-free (no Django import). A value that cannot be used raises ``ConfigError``;
settings turns it into Django's ``ImproperlyConfigured``."""

from __future__ import annotations

import os
from typing import NamedTuple


class ConfigError(ValueError):
    """An environment variable set to a value the app cannot use (the message names it)."""


def envbool(name: str, default: str) -> bool:
    return os.getenv(name, default).strip().lower() in ("1", "true", "yes", "on")


def envint(name: str, default: str, minimum: int | None = None) -> int:
    value = os.getenv(name, default)
    try:
        number = int(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from exc
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {number}")
    return number


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


class EngineVariables(NamedTuple):
    """What the engine is handed for every model it loads (it never reads the environment)."""

    # Where the network runs: auto (CUDA when PyTorch sees it, else CPU), cpu, cuda, cuda:1…
    device: str
    # auto (mixed bfloat16 where the CPU has it natively), fp32 or bf16 (engine.segment).
    precision: str
    # PyTorch's intra-op CPU threads; None: every CPU the process may use.
    threads: int | None
    # A mirror to download missing weights from (<URL>/<file name>); None: the official links.
    weights_url: str | None


def engine_variables() -> EngineVariables:
    """BGREMOVER_DEVICE, BGREMOVER_PRECISION, BGREMOVER_TORCH_THREADS and
    BGREMOVER_WEIGHTS_URL, read and checked."""
    threads = (
        envint("BGREMOVER_TORCH_THREADS", "", minimum=1)
        if os.getenv("BGREMOVER_TORCH_THREADS", "").strip()
        else None
    )
    return EngineVariables(
        device=os.getenv("BGREMOVER_DEVICE", "").strip() or "auto",
        precision=os.getenv("BGREMOVER_PRECISION", "").strip().lower() or "auto",
        threads=threads,
        weights_url=os.getenv("BGREMOVER_WEIGHTS_URL", "").strip() or None,
    )
