"""The engine is a plain package: callers hand it its configuration, it reads no environment."""

from __future__ import annotations

from tests.conftest import REPO_ROOT

ENGINE = REPO_ROOT / "bgremover" / "engine"
# os.environ, os.getenv and the same names imported on their own (from os import environ).
READS = ("os.environ", "os.getenv", "os.putenv", "import environ", "import getenv")


def test_no_engine_module_reads_the_environment():
    modules = sorted(ENGINE.rglob("*.py"))
    assert modules, f"no engine modules under {ENGINE}"
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in modules
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(read in line for read in READS)
    ]
    assert offenders == []


def test_no_engine_module_names_the_apps_commands_or_model_dir_setting():
    """The engine's errors say what is wrong; advice in the app's terms (its commands, its
    BGREMOVER_MODEL_DIR) is added by the app (editor.weights_advice)."""
    words = ("manage.py", "fetch_models", "BGREMOVER_MODEL_DIR")
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}"
        for path in sorted(ENGINE.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if any(word in line for word in words)
    ]
    assert offenders == []
