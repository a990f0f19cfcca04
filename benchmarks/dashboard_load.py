"""How fast every dashboard page shows at scale (PRD target: first render < 1 s).

Seeds a fresh PostgreSQL database (one made and dropped by the script, or --database-url) with
one organization, its owner, --runs runs and --steps step executions per run (default 100,000
and 10: a million step executions; bulk-loaded with COPY, the service layer makes the org,
user and workflow), serves the dashboard exactly as `orbin up` does (`streamlit run
streamlit_app/streamlit_app.py`), and drives Debian's headless Chromium:

- sign-in: from pressing "Sign in" to the overview showing the newest run;
- every page by its path (/, /workflows, /editor, /runs, /run?id=, /events, ... /account),
  loaded with the browser's cache warm, until its heading (and for /runs its newest row) shows;
- for scale, the floor: a bare two-line Streamlit page reloaded the same way on this machine,
  with each page's ratio to it.

No Prefect server is needed: the dashboard only reads Orbin's database.

    .venv/bin/python benchmarks/dashboard_load.py [--runs 100000] [--steps 10] [--repeat 5]
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


def seed(runs: int, steps: int) -> str:
    """The org, its owner and workflow through the service layer; then `runs` runs with
    `steps` step executions each, COPYed in (time-ordered ids, newest last). Returns the
    newest run's id."""
    import json

    import psycopg

    from orbin_flows.workflows import create_workflow
    from tenancy.db import get_engine, session_scope
    from tenancy.migrate import upgrade
    from tenancy.orgs import add_member, create_organization, create_user
    from tenancy.principal import system_principal

    upgrade()
    with session_scope() as session:
        org = create_organization(session, name="Bench", slug="bench", plan="enterprise")
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
                    {"id": f"s{i}", "name": f"Step {i}", "type": "action", "config": STEP_SPEC}
                    for i in range(steps)
                ],
            },
        )
        org_id, wf_id = org.id, wf.id

    def uid(ms: int, n: int) -> str:
        h = f"{ms:012x}7{n:019x}"[:32]
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    now = int(time.time() * 1000)
    start = now - 30 * 86_400_000  # a month of history, the newest just now
    gap = max(1, (now - start) // max(runs, 1))
    url = get_engine().url.set(drivername="postgresql").render_as_string(hide_password=False)
    newest = ""
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        run_cols = (
            "id, organization_id, workflow_id, workflow_version, status, trigger_type, "
            "trigger_data, started_at, completed_at, duration_ms, created_at, cancel_requested"
        )
        step_cols = (
            "id, organization_id, workflow_run_id, step_id, step_name, step_type, status, "
            "attempt, max_attempts, input, output, started_at, completed_at, duration_ms, "
            "created_at"
        )
        with cur.copy(f"COPY workflow_runs ({run_cols}) FROM STDIN") as copy:
            for i in range(runs):
                ms = start + i * gap
                status = "failed" if i % 10 == 3 else "completed"
                newest = uid(ms, i)
                copy.write_row(
                    (
                        newest,
                        org_id,
                        wf_id,
                        1,
                        status,
                        "event",
                        json.dumps({"type": "bench.go", "data": {"i": i}}),
                        ms,
                        ms + 120,
                        120,
                        ms,
                        False,
                    )
                )
        with cur.copy(f"COPY step_executions ({step_cols}) FROM STDIN") as copy:
            for i in range(runs):
                ms = start + i * gap
                run_id = uid(ms, i)
                for k in range(steps):
                    copy.write_row(
                        (
                            uid(ms + k, i * steps + k + (1 << 60)),
                            org_id,
                            run_id,
                            f"s{k}",
                            f"Step {k}",
                            "action",
                            "completed",
                            1,
                            3,
                            json.dumps({"i": i}),
                            json.dumps({"i": i, "k": k}),
                            ms + k * 10,
                            ms + k * 10 + 9,
                            9,
                            ms + k,
                        )
                    )
        cur.execute("ANALYZE workflow_runs")
        cur.execute("ANALYZE step_executions")
        conn.commit()
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


PAGES = [  # path, the heading that shows it is drawn
    ("/", "Overview"),
    ("/workflows", "Workflows"),
    ("/editor", "New workflow"),
    ("/runs", "Runs"),
    ("/run?id={newest}", "Run"),
    ("/events", "Events"),
    ("/integrations", "Integrations"),
    ("/api-keys", "API keys"),
    ("/settings", "Settings"),
    ("/members", "Members"),
    ("/billing", "Billing"),
    ("/audit", "Audit log"),
    ("/account", "Account"),
]


def page_shows(page, path: str, heading: str, newest: str) -> None:
    page.locator(
        '[data-testid="stMain"] h1, [data-testid="stMain"] h3', has_text=heading
    ).first.wait_for()
    if path.startswith("/runs"):
        table_shows(page, newest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from tests.support import services

    made = None
    url = args.database_url
    if url is None:
        made = services.create_pg_database("orbin_dash_bench")
        url = services.pg_url(made)
    try:
        with tempfile.TemporaryDirectory(prefix="orbin-bench-") as tmp:
            home = Path(tmp)
            os.environ["ORBIN_HOME"] = str(home)
            os.environ["ORBIN_DATABASE_URL"] = url
            t = time.perf_counter()
            newest = seed(args.runs, args.steps)
            seeded = time.perf_counter() - t
            print(f"seeded {args.runs:,} runs, {args.runs * args.steps:,} steps in {seeded:.1f} s")
            results = measure(home, newest, args.repeat)
            with sync_playwright() as driver:
                floor = bare_floor(driver, home, args.repeat)
    finally:
        if made:
            services.drop_pg_database(made)
    report(results, floor, args)


def measure(home: Path, newest: str, repeat: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    proc = start_dashboard(port, env, home / "dashboard.log")
    base = f"http://127.0.0.1:{port}"
    results: dict[str, list[float]] = {}
    try:
        if not wait_http(base + "/_stcore/health", 60, proc):
            raise SystemExit((home / "dashboard.log").read_text()[-3000:])
        with sync_playwright() as driver:
            context = driver.chromium.launch_persistent_context(
                str(home / "profile-warm"),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
            )
            context.set_default_timeout(60_000)
            page = context.new_page()
            page.goto(base + "/signin")
            page.wait_for_load_state("networkidle")
            page.fill("#email", EMAIL)
            page.fill("#password", PASSWORD)
            t0 = time.perf_counter()
            page.click("button[type=submit]")
            page.locator(f'tr[data-run-id="{newest}"]').wait_for()
            results["sign-in -> overview with the newest run"] = [time.perf_counter() - t0]
            for _ in range(repeat):
                for path, heading in PAGES:
                    target = path.format(newest=newest)
                    t0 = time.perf_counter()
                    page.goto(base + target)
                    page_shows(page, target, heading, newest)
                    results.setdefault(path.split("?")[0] or "/", []).append(
                        time.perf_counter() - t0
                    )
            context.close()
    finally:
        stop_process(proc)
    return results


def report(results: dict[str, list[float]], floor: list[float], args: argparse.Namespace) -> None:
    base = statistics.median(floor) if floor else None
    cores, load = os.cpu_count(), os.getloadavg()[0]
    print(
        f"dashboard first render, {args.runs:,} runs / {args.runs * args.steps:,} step "
        f"executions in PostgreSQL, {cores} cores, load {load:.1f}"
    )
    for label, values in results.items():
        ms = sorted(v * 1000 for v in values)
        med = statistics.median(ms)
        ratio = f"  {med / (base * 1000):4.1f}x the bare page" if base else ""
        print(f"  {label:<44} median {med:6.0f} ms  max {ms[-1]:6.0f} ms{ratio}")
    if floor:
        print(f"  {'bare Streamlit page (the floor)':<44} median {base * 1000:6.0f} ms")
    print("PRD target: every page's first render < 1000 ms")


if __name__ == "__main__":
    main()
