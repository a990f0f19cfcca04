"""How fast the dashboard shows an organization's runs after sign-in (PRD target: < 1 s).

Seeds a fresh Orbin database (SQLite, or --database-url) with one organization, its owner and
--runs runs of two steps each, serves the dashboard exactly as `orbin up` does (`streamlit run
streamlit_app/streamlit_app.py`), and drives Debian's headless Chromium:

- sign-in: from pressing "Sign in" to the runs table showing the newest run, in a fresh
  browser profile, the first visitor after the server started and then more. The sign-in
  page preloads Streamlit's bundle while the visitor types; the benchmark waits for that
  (network idle) before it types, as a person would take longer;
- reload: loading the runs page again with the browser's cache warm (a returning user);
- run debugger: opening a run's page by its link (`/run?run=<id>`), warm cache;
- for scale, the floor: a bare two-line Streamlit page reloaded the same way on this machine.

No Prefect server is needed: the dashboard only reads Orbin's database.

    .venv/bin/python benchmarks/dashboard_load.py [--runs 200] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.support.services import free_port, stop_process, wait_http  # noqa: E402

EMAIL = "owner@bench.example"
PASSWORD = "bench-password-1"
STEP_SPEC = {"action": "transform", "output": {"ok": True}}


def seed(runs: int) -> str:
    """An org with a workflow and `runs` completed runs; returns the newest run's id."""
    from orbin_flows.workflows import create_workflow
    from tenancy import runs as runs_repo
    from tenancy.db import session_scope
    from tenancy.migrate import upgrade
    from tenancy.orgs import add_member, create_organization, create_user
    from tenancy.principal import system_principal

    upgrade()
    with session_scope() as session:
        org = create_organization(session, name="Bench", slug="bench")
        user = create_user(session, email=EMAIL, name="Bench Owner", password=PASSWORD)
        add_member(session, organization_id=org.id, user_id=user.id, role="owner")
        wf = create_workflow(
            session,
            system_principal(org.id, org.slug, org.plan),
            {
                "name": "Nightly sync",
                "slug": "nightly-sync",
                "status": "active",
                "trigger": {"type": "event", "config": {"eventType": "bench.go"}},
                "steps": [
                    {"id": "fetch", "name": "Fetch", "type": "action", "config": STEP_SPEC},
                    {"id": "store", "name": "Store", "type": "action", "config": STEP_SPEC},
                ],
            },
        )
        newest = ""
        for i in range(runs):
            run = runs_repo.create_run(
                session,
                organization_id=org.id,
                workflow=wf,
                trigger_type="event",
                trigger_data={"type": "bench.go", "data": {"i": i}},
            )
            runs_repo.mark_run_running(session, run=run, worker_id="bench", lease_ms=60_000)
            for step_id in ("fetch", "store"):
                rec = runs_repo.start_step(
                    session,
                    run=run,
                    step_id=step_id,
                    step_name=step_id.title(),
                    step_type="action",
                    attempt=1,
                    max_attempts=3,
                    input={"i": i},
                )
                runs_repo.finish_step(session, step=rec, status="completed", output={"i": i})
            status = "failed" if i % 10 == 3 else "completed"
            runs_repo.finish_run(session, run=run, status=status, result={"i": i})
            newest = run.id
    return newest


def start_dashboard(
    port: int,
    env: dict[str, str],
    log: Path,
    entry: Path = ROOT / "streamlit_app" / "streamlit_app.py",
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "streamlit", "run", str(entry), "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    return subprocess.Popen(
        cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True
    )


def table_shows(page, run_id: str) -> None:
    page.locator(f'table.orbin-runs tr[data-run-id="{run_id}"]').wait_for()


def sign_in_once(driver, base: str, profile: Path, newest: str) -> float:
    context = driver.chromium.launch_persistent_context(
        str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    try:
        context.set_default_timeout(60_000)
        page = context.new_page()
        page.goto(base + "/signin")
        page.wait_for_load_state("networkidle")  # a person types for longer than this
        page.fill("#email", EMAIL)
        page.fill("#password", PASSWORD)
        t0 = time.perf_counter()
        page.click("button[type=submit]")
        table_shows(page, newest)
        return time.perf_counter() - t0
    finally:
        context.close()


def bare_floor(driver, home: Path, repeat: int) -> list[float]:
    """Warm reloads of a bare Streamlit page: what Streamlit itself costs here."""
    script = home / "bare.py"
    script.write_text('import streamlit as st\nst.title("Runs")\nst.write("ready")\n')
    port = free_port()
    proc = start_dashboard(port, dict(os.environ), home / "bare.log", entry=script)
    try:
        if not wait_http(f"http://127.0.0.1:{port}/_stcore/health", 60, proc):
            return []
        context = driver.chromium.launch_persistent_context(
            str(home / "profile-bare"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = context.new_page()
        times = []
        for i in range(repeat + 1):
            t0 = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text("ready").wait_for()
            if i:  # the first load fills the cache
                times.append(time.perf_counter() - t0)
        context.close()
        return times
    finally:
        stop_process(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="orbin-bench-") as tmp:
        home = Path(tmp)
        os.environ["ORBIN_HOME"] = str(home)
        if args.database_url:
            os.environ["ORBIN_DATABASE_URL"] = args.database_url
        t = time.perf_counter()
        newest = seed(args.runs)
        print(f"seeded {args.runs} runs in {time.perf_counter() - t:.1f} s")

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        proc = start_dashboard(port, env, home / "dashboard.log")
        base = f"http://127.0.0.1:{port}"
        try:
            if not wait_http(base + "/_stcore/health", 60, proc):
                raise SystemExit((home / "dashboard.log").read_text()[-3000:])
            with sync_playwright() as driver:
                first = sign_in_once(driver, base, home / "profile-0", newest)
                fresh = [
                    sign_in_once(driver, base, home / f"profile-{i}", newest)
                    for i in range(1, args.repeat + 1)
                ]
                context = driver.chromium.launch_persistent_context(
                    str(home / "profile-warm"),
                    executable_path=CHROMIUM,
                    headless=True,
                    args=CHROMIUM_ARGS,
                )
                context.set_default_timeout(60_000)
                page = context.new_page()
                page.goto(base + "/signin")
                page.fill("#email", EMAIL)
                page.fill("#password", PASSWORD)
                page.click("button[type=submit]")
                table_shows(page, newest)
                reloads, details = [], []
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    page.goto(base + "/")
                    table_shows(page, newest)
                    reloads.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    page.goto(f"{base}/run?run={newest}")
                    page.locator('h3 .orbin-badge[data-status="completed"]').wait_for()
                    page.locator(".js-plotly-plot").wait_for()
                    details.append(time.perf_counter() - t0)
                context.close()
        finally:
            stop_process(proc)
        with sync_playwright() as driver:
            floor = bare_floor(driver, home, args.repeat)

    def show(label: str, values: list[float]) -> None:
        ms = sorted(v * 1000 for v in values)
        p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
        print(
            f"{label:<58} median {statistics.median(ms):6.0f} ms  "
            f"min {ms[0]:6.0f}  p95 {p95:6.0f}  (n={len(ms)})"
        )

    backend = "PostgreSQL" if args.database_url else "SQLite"
    cores, load = os.cpu_count(), os.getloadavg()[0]
    print(f"dashboard load, {args.runs} runs in the org, {backend}, {cores} cores, load {load:.1f}")
    print(f"{'sign-in -> runs table, first visitor after server start':<58} {first * 1000:6.0f} ms")
    show("sign-in -> runs table, fresh browser profile", fresh)
    show("runs page load, warm browser cache", reloads)
    show("run debugger load (?run=<id>), warm browser cache", details)
    if floor:
        show("for scale: a bare Streamlit page, warm browser cache", floor)
    print("PRD target: dashboard load < 1000 ms")


if __name__ == "__main__":
    main()
