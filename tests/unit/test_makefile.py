"""What each make target installs, read from make's own plan (``make -n``) for a virtualenv
that does not exist yet: `make up` only what running needs; `make test`, `make install` and
CI (`.ci/run` runs `make test`) the test extras too."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _installs(target: str, venv: Path) -> list[str]:
    out = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [line for line in out.stdout.splitlines() if "pip install" in line and " -e " in line]


def test_make_up_installs_what_running_needs_only(tmp_path: Path) -> None:
    lines = _installs("up", tmp_path / "venv")
    assert lines and all("[test]" not in line for line in lines), lines
    assert any(line.rstrip().endswith("-e .") for line in lines), lines


@pytest.mark.parametrize("target", ["test", "install", "unit"])
def test_the_test_targets_install_the_test_extras(tmp_path: Path, target: str) -> None:
    lines = _installs(target, tmp_path / "venv")
    assert any('-e ".[test]"' in line for line in lines), lines


def test_ci_runs_make_test() -> None:
    assert "make test" in (ROOT / ".ci" / "run").read_text()
