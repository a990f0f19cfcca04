"""The README's API examples, run as written against a started platform (``orbin up``), so
that they cannot drift from the API: every ```bash block of its API section runs in one
shell with the platform's URL and a new key put in place of the README's; every curl must
answer 2xx, and every run the examples start must complete."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.services import Platform

README = Path(__file__).resolve().parents[2] / "README.md"
URL, KEY = "http://127.0.0.1:8000", "sk_live_..."
FINAL = ("completed", "failed", "canceled", "timed_out")


def api_blocks(text: str) -> list[str]:
    section = text.split("\n## API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(?:bash|sh)\n(.*?)```", section, re.S)


def run_ids(output: str) -> set[str]:
    """The runs the examples' answers name (curl prints JSON answers back to back)."""
    decoder, found, at = json.JSONDecoder(), set(), 0
    while (at := output.find("{", at)) != -1:
        try:
            answer, end = decoder.raw_decode(output, at)
        except ValueError:
            at += 1
            continue
        if isinstance(answer, dict):
            found.update(answer.get("runIds") or [])
            found.update(answer.get("startedRunIds") or [])
        at = end
    return found


def test_the_readme_api_examples_run_as_written(platform: Platform) -> None:
    blocks = api_blocks(README.read_text())
    assert blocks, "the README's API section has no ```bash examples"
    script = "\n".join(blocks)
    assert URL in script and KEY in script, "the examples set API and KEY as documented"
    key = platform.new_key()
    script = script.replace(URL, platform.api_url).replace(KEY, key)
    # Each curl fails the script on any answer that is not 2xx, with the body shown.
    prelude = 'set -euo pipefail\ncurl() { command curl --fail-with-body --max-time 30 "$@"; }\n'
    done = subprocess.run(
        ["bash", "-c", prelude + script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{done.stderr[-2000:]}\n{done.stdout[-2000:]}"

    runs = run_ids(done.stdout)
    assert len(runs) >= 2, f"the examples start runs (an event and its replay): {done.stdout}"
    deadline = time.monotonic() + 90
    for run_id in runs:
        while True:
            run = httpx.get(f"{platform.api_url}/v1/runs/{run_id}", headers={"x-api-key": key})
            body = run.json()
            if body.get("status") in FINAL or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert body["status"] == "completed", body
        steps = {s["stepId"]: s for s in body["steps"]}
        assert steps["shout"]["output"] == "HELLO ADA", "the templates do what the README says"
