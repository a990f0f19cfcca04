"""Change -> live client: from the commit of a run status change to its arrival on an SSE
client of ``GET /v1/stream``, p50/p95/p99 in ms (PRD target: < 50 ms p95).

For each backend (PostgreSQL when it answers, and SQLite) the API runs as its own process
(``orbin api``), as in production; this process writes the changes, as the worker does, with
the service layer's own function (``create_run``: a new pending run, one commit each),
and reads the stream with 1 and with ``--fanout`` clients. The clock starts just before COMMIT.

Baselines, without the API:
  postgres  raw LISTEN/NOTIFY round trip (NOTIFY + commit on one connection, LISTEN on another)
  sqlite    raw tail of the change log: a loop polling it every ORBIN_STREAM_POLL_SECONDS

Usage: .venv/bin/python benchmarks/realtime_latency.py [--samples 300] [--fanout 20]
       [--backends postgres,sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support import services  # noqa: E402


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def line(label: str, values: list[float]) -> str:
    return (
        f"  {label:<34} p50 {pct(values, 50):6.1f}  p95 {pct(values, 95):6.1f}  "
        f"p99 {pct(values, 99):6.1f}  max {max(values):6.1f} ms  (n={len(values)})"
    )


# --- the database and a run to change ---------------------------------------------------------


def configure(home: Path, url: str) -> None:
    from tenancy import config, crypto, db

    os.environ["ORBIN_HOME"] = str(home)
    os.environ["ORBIN_DATABASE_URL"] = url
    config.reset_settings()
    crypto.reset()
    db.dispose_engines()


def seed() -> tuple[str, str]:
    """An organization, its secret key and a workflow; returns (key, workflow id)."""
    from orbin_flows.workflows import create_workflow
    from tenancy.db import session_scope
    from tenancy.keys import create_api_key
    from tenancy.migrate import upgrade
    from tenancy.orgs import create_organization
    from tenancy.principal import system_principal

    upgrade()
    with session_scope() as session:
        org = create_organization(session, name="Bench", slug="bench")
        key = create_api_key(session, organization_id=org.id, name="bench", type="secret")
        spec = {"name": "B", "slug": "b", "trigger": {"type": "manual"}, "steps": []}
        wf = create_workflow(session, system_principal(org.id, org.slug), spec)
        return key.plaintext, wf.id


def change(workflow_id: str, i: int) -> float:
    """One committed run change (a new pending run, as ingestion makes it); returns the time
    just before COMMIT."""
    from tenancy import runs as runs_repo
    from tenancy.db import session_factory
    from tenancy.models import Workflow

    session = session_factory()()
    try:
        wf = session.get(Workflow, workflow_id)
        assert wf is not None
        runs_repo.create_run(
            session,
            organization_id=wf.organization_id,
            workflow=wf,
            trigger_type="manual",
            trigger_data={"i": i},
        )
        session.flush()
        t0 = time.perf_counter()
        session.commit()
        return t0
    finally:
        session.close()


# --- the API process and its SSE clients ----------------------------------------------------


def start_api(home: Path, url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = services.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORBIN_")}
    env.update(
        ORBIN_HOME=str(home),
        ORBIN_DATABASE_URL=url,
        ORBIN_API_PORT=str(port),
        PREFECT_API_URL="http://127.0.0.1:9/api",  # not used by the stream
    )
    log = open(home / "api.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "orbin_cli.main", "api"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=str(ROOT),
    )
    base = f"http://127.0.0.1:{port}"
    if not services.wait_http(base + "/v1/workflows/schema", 60, proc):
        proc.kill()
        raise RuntimeError((home / "api.log").read_text()[-2000:])
    return proc, base


class Client:
    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.received: dict[int, float] = {}
        self.connected = asyncio.Event()
        self.changed = asyncio.Event()

    async def run(self) -> None:
        timeout = httpx.Timeout(10, read=None)
        async with (
            httpx.AsyncClient(timeout=timeout) as http,
            http.stream("GET", self.url, headers={"x-api-key": self.key}) as resp,
        ):
            resp.raise_for_status()
            seq = None
            async for text in resp.aiter_lines():
                if text == ": connected":
                    self.connected.set()
                elif text.startswith("id: "):
                    seq = int(text[4:])
                elif text == "" and seq is not None:
                    self.received[seq] = time.perf_counter()
                    seq = None
                    self.changed.set()


async def measure_api(
    base: str, key: str, workflow_id: str, samples: int, clients: int
) -> list[float]:
    readers = [Client(f"{base}/v1/stream?kinds=run", key) for _ in range(clients)]
    tasks = [asyncio.create_task(r.run()) for r in readers]
    await asyncio.wait_for(asyncio.gather(*(r.connected.wait() for r in readers)), 30)
    latencies: list[float] = []
    try:
        for i in range(samples + 10):
            seen = [len(r.received) for r in readers]
            t0 = await asyncio.to_thread(change, workflow_id, i)
            for r, before in zip(readers, seen, strict=True):
                while len(r.received) <= before:
                    r.changed.clear()
                    await asyncio.wait_for(r.changed.wait(), 10)
                if i >= 10:  # the first ones warm things up
                    latencies.append((r.received[max(r.received)] - t0) * 1000)
            await asyncio.sleep(random.uniform(0.005, 0.02))
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return latencies


# --- baselines --------------------------------------------------------------------------------


async def baseline_notify(url: str, samples: int) -> list[float]:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    out: list[float] = []
    got: list[float] = []
    arrived = asyncio.Event()

    async def listen(conn: psycopg.AsyncConnection) -> None:
        async for _ in conn.notifies():
            got.append(time.perf_counter())
            arrived.set()

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as listener:
        await listener.execute("LISTEN bench")
        task = asyncio.create_task(listen(listener))
        with psycopg.connect(dsn) as sender:

            def send(i: int) -> float:
                sender.execute("SELECT pg_notify('bench', %s)", (str(i),))
                t0 = time.perf_counter()
                sender.commit()
                return t0

            try:
                for i in range(samples + 10):
                    before = len(got)
                    t0 = await asyncio.to_thread(send, i)
                    while len(got) <= before:
                        arrived.clear()
                        await asyncio.wait_for(arrived.wait(), 10)
                    if i >= 10:
                        out.append((got[-1] - t0) * 1000)
                    await asyncio.sleep(random.uniform(0.005, 0.02))
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    return out


def baseline_tail(workflow_id: str, samples: int) -> list[float]:
    from tenancy.changes import latest_change_seq
    from tenancy.config import get_settings
    from tenancy.db import session_scope

    poll = get_settings().stream_poll_seconds
    seen: dict[int, float] = {}
    stop = threading.Event()

    def tail() -> None:
        last = 0
        while not stop.is_set():
            with session_scope() as session:
                seq = latest_change_seq(session)
            if seq > last:
                seen[seq] = time.perf_counter()
                last = seq
            time.sleep(poll)

    thread = threading.Thread(target=tail, daemon=True)
    thread.start()
    out: list[float] = []
    try:
        for i in range(samples + 10):
            before = len(seen)
            t0 = change(workflow_id, i)
            deadline = time.monotonic() + 5
            while len(seen) <= before and time.monotonic() < deadline:
                time.sleep(0.0005)
            if i >= 10 and len(seen) > before:
                out.append((seen[max(seen)] - t0) * 1000)
            time.sleep(random.uniform(0.005, 0.02))
    finally:
        stop.set()
        thread.join()
    return out


# --- main -------------------------------------------------------------------------------------


def bench_backend(name: str, samples: int, fanout: int) -> None:
    pg_name = None
    with tempfile.TemporaryDirectory(prefix=f"orbin-rt-{name}-") as tmp:
        home = Path(tmp)
        if name == "postgres":
            pg_name = services.create_pg_database("orbin_rt")
            url = services.pg_url(pg_name)
        else:
            url = f"sqlite:///{home / 'orbin.db'}"
        configure(home, url)
        proc = None
        try:
            key, workflow_id = seed()
            proc, base = start_api(home, url)
            print(f"\n{name}:")
            one = asyncio.run(measure_api(base, key, workflow_id, samples, 1))
            print(line("commit -> SSE client (1 client)", one))
            many = asyncio.run(measure_api(base, key, workflow_id, max(50, samples // 3), fanout))
            print(line(f"commit -> SSE client ({fanout} clients)", many))
            if name == "postgres":
                raw = asyncio.run(baseline_notify(url, samples))
                print(line("baseline: raw LISTEN/NOTIFY", raw))
            else:
                raw = baseline_tail(workflow_id, samples)
                print(line("baseline: raw change-log tail", raw))
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(10)
            from tenancy.db import dispose_engines

            dispose_engines()
            if pg_name:
                services.drop_pg_database(pg_name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--fanout", type=int, default=20)
    parser.add_argument("--backends", default="postgres,sqlite")
    args = parser.parse_args()
    from tenancy.config import get_settings

    print(
        f"realtime latency, {args.samples} changes per case, one at a time "
        f"(SQLite tail every {get_settings().stream_poll_seconds * 1000:.0f} ms)"
    )
    for name in args.backends.split(","):
        if name == "postgres" and not services.postgres_available():
            print("\npostgres: skipped (PostgreSQL does not answer on 127.0.0.1:5432)")
            continue
        bench_backend(name, args.samples, args.fanout)


if __name__ == "__main__":
    main()
