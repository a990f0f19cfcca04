"""The operator's side: a bad plans file stops `orbin up` at once, saying what is wrong;
`orbin org set-plan` changes a plan without Stripe."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORBIN = str(ROOT / ".venv" / "bin" / "orbin")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORBIN_", "PREFECT_"))}
    env.update(ORBIN_HOME=str(tmp_path / "home"), **extra)
    return env


def test_a_bad_plans_file_stops_orbin_up_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "plans.json"
    bad.write_text(json.dumps({"plans": {"free": {"monthlyExecutions": -1}}}))
    out = subprocess.run(
        [ORBIN, "up"], env=_env(tmp_path, ORBIN_PLANS_FILE=str(bad)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 2
    said = out.stdout + out.stderr
    assert "plans.json" in said and "free.monthlyExecutions" in said
    assert "free.concurrency" in said  # every problem at once, not the first only


def test_set_plan_from_the_cli(tmp_path: Path) -> None:
    env = _env(tmp_path)
    subprocess.run([ORBIN, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    subprocess.run(
        [ORBIN, "org", "create", "--slug", "acme"], env=env, check=True, capture_output=True
    )
    out = subprocess.run(
        [ORBIN, "org", "set-plan", "--org", "acme", "--plan", "pro"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0 and out.stdout.strip() == "acme\tpro"
    listed = subprocess.run([ORBIN, "org", "list"], env=env, capture_output=True, text=True)
    assert "acme\tpro" in listed.stdout
    bad = subprocess.run(
        [ORBIN, "org", "set-plan", "--org", "acme", "--plan", "gold"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2 and "unknown plan 'gold'" in bad.stderr


def test_a_bad_plans_file_stops_the_api_and_the_worker_too(tmp_path: Path) -> None:
    bad = tmp_path / "plans.yaml"
    bad.write_text("plans:\n  pro: {concurrency: 3}\n")
    for command in ("api", "worker"):
        out = subprocess.run(
            [ORBIN, command], env=_env(tmp_path, ORBIN_PLANS_FILE=str(bad)),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 2, (command, out.stderr)
        assert "plans.yaml" in out.stderr and "pro.monthlyExecutions" in out.stderr
