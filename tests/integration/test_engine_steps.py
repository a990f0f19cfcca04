"""The engine from outside, on the running platform: actions against a local HTTP service,
retries as Prefect task retries, control steps, timeouts, versions, cancel/replay/resume.

Each test makes its workflows in an organization of its own module (plan ``pro``) so other
tests' runs and quotas do not interfere; every run is a real Prefect flow run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.httpd import Answer, Service
from tests.support.orbin_client import Orbin
from tests.support.services import Platform

_KEYS: dict[str, str] = {}


@pytest.fixture
def orbin(platform: Platform) -> Orbin:
    key = _KEYS.get(platform.api_url)
    if key is None:
        slug = f"eng-{uuid.uuid4().hex[:8]}"
        platform.orbin("org", "create", "--slug", slug, "--plan", "pro")
        key = _KEYS[platform.api_url] = platform.new_key(slug)
    return Orbin(platform.api_url, key, platform.prefect_api_url)


@pytest.fixture(scope="module")
def svc() -> Iterator[Service]:
    service = Service()
    yield service
    service.close()


def _path(name: str) -> str:
    return f"/{name}-{uuid.uuid4().hex[:8]}"


def _http(step_id: str, url: str, **config: object) -> dict:
    policy = config.pop("retryPolicy", {"maxAttempts": 1})
    step = {
        "id": step_id,
        "name": step_id.title(),
        "type": "action",
        "config": {"action": "http", "url": url, **config},
    }
    if policy is not None:
        step["retryPolicy"] = policy
    return step


def _transform(step_id: str, output: object) -> dict:
    return {
        "id": step_id,
        "name": step_id.title(),
        "type": "action",
        "config": {"action": "transform", "output": output},
    }


def test_http_step_sends_the_rendered_request_and_records_the_answer(orbin, svc) -> None:
    path = _path("users")
    url = svc.script(path, Answer(201, {"id": 42, "name": "Ada"}, headers={"x-req": "r1"}))
    wf = orbin.create(
        {
            "name": "Lookup",
            "slug": "lookup",
            "steps": [
                _http(
                    "lookup",
                    url,
                    method="POST",
                    headers={"x-token": "{{ trigger.data.token }}"},
                    query={"email": "{{ trigger.data.email }}"},
                    body={"email": "{{ trigger.data.email }}", "n": "{{ trigger.data.n }}"},
                    expectStatus=[201],
                    timeout=5,
                ),
                _transform(
                    "use",
                    {
                        "id": "{{ steps.lookup.output.body.id }}",
                        "text": "user-{{ steps.lookup.output.body.id }}",
                    },
                ),
            ],
        }
    )
    run = orbin.wait(orbin.start(wf, {"token": "t0k", "email": "ada@example.com", "n": 7}))
    assert run["status"] == "completed", run
    hit = svc.hits[path][0]
    assert hit.method == "POST" and hit.headers["x-token"] == "t0k"
    assert hit.query == {"email": ["ada@example.com"]}
    assert hit.body == {"email": "ada@example.com", "n": 7}, "a lone template keeps its type"
    lookup = orbin.steps(run)["lookup"]
    assert lookup["output"]["status"] == 201 and lookup["output"]["body"]["name"] == "Ada"
    assert lookup["output"]["headers"]["x-req"] == "r1"
    assert lookup["input"]["body"] == {"email": "ada@example.com", "n": 7}
    assert run["result"] == {"id": 42, "text": "user-42"}
    fr = orbin.wait_flow_run(run["prefectFlowRunId"], "COMPLETED")
    assert fr["work_pool_name"].startswith("orbin-eng-")
    names = sorted(t["name"] for t in orbin.task_runs(run["prefectFlowRunId"], 2))
    assert names == ["lookup", "use"]


def test_a_flaky_step_is_retried_with_backoff_as_prefect_task_retries(orbin, svc) -> None:
    path = _path("flaky")
    url = svc.script(path, Answer(503), Answer(429), Answer(200, {"ok": True}))
    policy = {
        "maxAttempts": 4,
        "backoffCoefficient": 4,
        "initialInterval": 500,
        "maxInterval": 800,
    }
    wf = orbin.create(
        {"name": "Flaky", "slug": "flaky", "steps": [_http("fetch", url, retryPolicy=policy)]}
    )
    run_id = orbin.start(wf)
    waiting = orbin.wait_until(
        run_id,
        lambda r: (
            any(s["status"] == "retrying" for s in r["steps"])
            or r["status"] in ("completed", "failed")
        ),
    )
    retrying = [s for s in waiting["steps"] if s["status"] == "retrying"]
    assert retrying, "the attempt waiting for its retry is shown as retrying"
    wait_ms = {1: 500, 2: 800}[retrying[0]["attempt"]]
    assert retrying[0]["nextRetryAt"] - retrying[0]["completedAt"] == pytest.approx(
        wait_ms, abs=100
    )
    run = orbin.wait(run_id)
    assert run["status"] == "completed", run
    attempts = [s for s in run["steps"] if s["stepId"] == "fetch"]
    assert [(s["attempt"], s["maxAttempts"], s["status"]) for s in attempts] == [
        (1, 4, "failed"),
        (2, 4, "failed"),
        (3, 4, "completed"),
    ]
    assert "answered 503" in attempts[0]["error"]["message"]
    assert "answered 429" in attempts[1]["error"]["message"]
    assert "stack" not in attempts[0]["error"], "an http step's error has no platform frames"
    assert attempts[2]["output"]["body"] == {"ok": True}
    assert all(s["startedAt"] <= s["completedAt"] and s["durationMs"] >= 0 for s in attempts)
    hits = [h.at for h in svc.hits[path]]
    assert len(hits) == 3
    # Waits of 0.5 s then 0.8 s (2 s capped at maxInterval), plus the engine's own overhead.
    assert 0.45 <= hits[1] - hits[0] <= 0.5 + 0.9
    assert 0.75 <= hits[2] - hits[1] <= 0.8 + 0.9 < 2.0
    (task,) = orbin.task_runs(run["prefectFlowRunId"])
    assert task["run_count"] == 3 and task["state_type"] == "COMPLETED"


def test_the_organization_default_policy_applies_without_a_step_policy(orbin, svc) -> None:
    path = _path("default")
    url = svc.script(path, Answer(500), Answer(200))
    wf = orbin.create(
        {"name": "Default", "slug": "default", "steps": [_http("fetch", url, retryPolicy=None)]}
    )
    run = orbin.wait(orbin.start(wf))
    assert run["status"] == "completed", run
    assert [(s["attempt"], s["maxAttempts"]) for s in run["steps"]] == [(1, 3), (2, 3)]


def test_an_unexpected_4xx_fails_at_once_and_a_timeout_is_retried(orbin, svc) -> None:
    missing = svc.script(_path("missing"), Answer(404, {"error": "no"}))
    slow = _path("slow")
    svc.script(slow, Answer(200, delay=2))
    policy = {"maxAttempts": 3, "initialInterval": 100, "maxInterval": 100}
    four = orbin.create(
        {
            "name": "Four",
            "slug": "four",
            "steps": [_http("fetch", missing, retryPolicy=policy), _transform("never", 1)],
        }
    )
    late = orbin.create(
        {
            "name": "Late",
            "slug": "late",
            "steps": [
                _http(
                    "fetch", svc.url + slow, timeout=0.5, retryPolicy={**policy, "maxAttempts": 2}
                )
            ],
        }
    )
    run_404, run_slow = orbin.start(four), orbin.start(late)
    run = orbin.wait(run_404)
    assert run["status"] == "failed"
    assert run["error"]["stepId"] == "fetch" and "answered 404" in run["error"]["message"]
    assert [(s["stepId"], s["attempt"], s["status"]) for s in run["steps"]] == [
        ("fetch", 1, "failed")
    ], "no retry, and the next step never ran"
    assert svc.count(missing.removeprefix(svc.url)) == 1
    assert orbin.wait_flow_run(run["prefectFlowRunId"], "FAILED")
    run = orbin.wait(run_slow)
    assert run["status"] == "failed" and "timed out" in run["error"]["message"]
    assert len(run["steps"]) == 2 and svc.count(slow) == 2


def test_step_and_run_timeouts_end_as_timed_out(orbin, svc) -> None:
    slow = _path("slower")
    svc.script(slow, Answer(200, delay=3))
    step_to = orbin.create(
        {
            "name": "Step timeout",
            "slug": "step-timeout",
            "steps": [{**_http("fetch", svc.url + slow, timeout=10), "timeoutSeconds": 0.5}],
        }
    )
    quick = _path("quick")
    svc.script(quick, Answer(200, delay=0.6))
    run_to = orbin.create(
        {
            "name": "Run timeout",
            "slug": "run-timeout",
            "timeoutSeconds": 1,
            "steps": [_http(f"s{i}", svc.url + quick) for i in range(4)],
        }
    )
    a, b = orbin.start(step_to), orbin.start(run_to)
    run = orbin.wait(a)
    assert run["status"] == "timed_out" and run["error"]["stepId"] == "fetch"
    assert "timed out after 0.5s" in run["error"]["message"]
    run = orbin.wait(b)
    assert run["status"] == "timed_out", run
    assert "exceeded its timeout of 1" in run["error"]["message"]
    # 4 steps of 0.6 s cannot fit in 1 s: the one under way when time ran out is failed.
    last = run["steps"][-1]
    assert last["status"] == "failed"
    assert last["error"]["message"] == "the run exceeded its timeout"
    assert all(s["status"] == "completed" for s in run["steps"][:-1])
    assert len(run["steps"]) <= 2 and svc.count(quick) <= 2


def test_a_condition_takes_one_branch_and_records_the_other_skipped(orbin) -> None:
    wf = orbin.create(
        {
            "name": "Cond",
            "slug": "cond",
            "steps": [
                {
                    "id": "big",
                    "name": "Big?",
                    "type": "condition",
                    "config": {
                        "expression": "trigger.data.total > 100",
                        "then": [_transform("vip", "vip {{ trigger.data.total }}")],
                        "else": [_transform("std", "std"), _transform("std2", "std2")],
                    },
                },
                _transform("after", "{{ steps.big.output.branch }}"),
            ],
        }
    )
    hi, lo = orbin.start(wf, {"total": 150}), orbin.start(wf, {"total": 5})
    run = orbin.wait(hi)
    assert run["status"] == "completed", run
    steps = {k: (v["status"], v["output"]) for k, v in orbin.steps(run).items()}
    assert steps == {
        "big": ("completed", {"result": True, "branch": "then"}),
        "vip": ("completed", "vip 150"),
        "std": ("skipped", None),
        "std2": ("skipped", None),
        "after": ("completed", "then"),
    }
    run = orbin.wait(lo)
    steps = {k: v["status"] for k, v in orbin.steps(run).items()}
    assert steps == {
        "big": "completed",
        "vip": "skipped",
        "std": "completed",
        "std2": "completed",
        "after": "completed",
    }


def test_a_loop_runs_nested_steps_per_item_with_bounded_concurrency(orbin, svc) -> None:
    path = _path("item")
    svc.script(path, Answer(200, {"ok": True}, delay=0.3))
    wf = orbin.create(
        {
            "name": "Loop",
            "slug": "loop",
            "steps": [
                {
                    "id": "each",
                    "name": "Each",
                    "type": "loop",
                    "config": {
                        "items": "{{ trigger.data.ids }}",
                        "concurrency": 2,
                        "steps": [
                            _http("get", svc.url + path, query={"id": "{{ item }}"}),
                            _transform(
                                "shape",
                                {
                                    "id": "{{ item }}",
                                    "i": "{{ index }}",
                                    "status": "{{ steps.get.output.status }}",
                                },
                            ),
                        ],
                    },
                },
            ],
        }
    )
    run = orbin.wait(orbin.start(wf, {"ids": [11, 12, 13, 14, 15, 16]}))
    assert run["status"] == "completed", run
    assert run["result"] == [{"id": 10 + n, "i": n - 1, "status": 200} for n in range(1, 7)]
    assert svc.max_in_flight[path] == 2 and svc.count(path) == 6
    keys = {s["stepId"] for s in run["steps"]}
    assert {"each", "each[0].get", "each[5].shape"} <= keys
    names = {t["name"] for t in orbin.task_runs(run["prefectFlowRunId"], 12)}
    assert {"each[0].get", "each[3].shape"} <= names, "each nested step is a Prefect task run"


def test_transform_and_emit_start_another_workflow(orbin) -> None:
    event_type = f"eng.done.{uuid.uuid4().hex[:6]}"
    follower = orbin.create(
        {
            "name": "Follower",
            "slug": "follower",
            "trigger": {"type": "event", "config": {"eventType": event_type}},
            "steps": [_transform("echo", "{{ trigger.data.value * 2 }}")],
        }
    )
    wf = orbin.create(
        {
            "name": "Emitter",
            "slug": "emitter",
            "steps": [
                _transform("calc", {"value": "{{ trigger.data.v + 1 }}"}),
                {
                    "id": "tell",
                    "name": "Tell",
                    "type": "action",
                    "config": {
                        "action": "emit",
                        "type": event_type,
                        "data": {"value": "{{ steps.calc.output.value }}"},
                    },
                },
            ],
        }
    )
    run_id = orbin.start(wf, {"v": 20})
    run = orbin.wait(run_id)
    assert run["status"] == "completed", run
    out = orbin.steps(run)["tell"]["output"]
    key = f"emit:{run_id}:tell"
    assert out["idempotencyKey"] == key, "one event per run and step, even if retried"
    assert (
        out["eventId"] == out["id"]
        and orbin.call("GET", f"/v1/events/{out['id']}").json()["runIds"]
    )
    (child_id,) = out["runIds"]
    child = orbin.wait(child_id)
    assert child["status"] == "completed" and child["result"] == 42
    assert child["workflowId"] == follower and child["triggerData"]["source"] == "workflow"


def test_python_steps_run_apart_and_a_crash_hang_or_oom_fails_only_that_step(orbin) -> None:
    def wf(slug: str, code: str, **cfg: object) -> str:
        return orbin.create(
            {
                "name": slug,
                "slug": slug,
                "steps": [
                    {
                        "id": "py",
                        "name": "Py",
                        "type": "action",
                        "retryPolicy": {"maxAttempts": 1},
                        "config": {"action": "python", "code": code, **cfg},
                    }
                ],
            }
        )

    cases = {
        "ok": wf(
            "py-ok",
            "import os\ndef main(input):\n"
            "    return {'double': input['n'] * 2, 'env': sorted(os.environ)}\n",
            input={"n": "{{ trigger.data.n }}"},
        ),
        "crash": wf("py-crash", "raise ValueError('bad input')"),
        "hang": wf("py-hang", "import time\ntime.sleep(120)", timeoutSeconds=1),
        "oom": wf("py-oom", "x = bytearray(2 * 10**9)", memoryMb=128),
        "exit": wf("py-exit", "import os\nos._exit(3)"),
    }
    runs = {name: orbin.start(w, {"n": 21}) for name, w in cases.items()}
    done = {name: orbin.wait(r) for name, r in runs.items()}
    assert done["ok"]["status"] == "completed"
    assert done["ok"]["result"]["double"] == 42
    assert set(done["ok"]["result"]["env"]) <= {"PATH", "LANG", "HOME"}, "no secrets leak"
    assert "ValueError: bad input" in done["crash"]["error"]["message"]
    assert "timed out after 1.0s" in done["hang"]["error"]["message"]
    assert "MemoryError" in done["oom"]["error"]["message"]
    assert "exited with code 3" in done["exit"]["error"]["message"]
    assert all(done[n]["status"] == "failed" for n in ("crash", "hang", "oom", "exit"))
    again = orbin.wait(orbin.start(cases["ok"], {"n": 1}))
    assert again["status"] == "completed", "the worker is unharmed"


def test_a_template_escape_fails_the_step_not_the_worker(orbin) -> None:
    wf = orbin.create(
        {
            "name": "Escape",
            "slug": "escape",
            "steps": [
                _transform("x", "{{ cycler.__init__.__globals__.os.popen('id').read() }}"),
                _transform("y", "{{ ''.__class__.__mro__[1].__subclasses__() }}"),
            ],
        }
    )
    run = orbin.wait(orbin.start(wf))
    assert run["status"] == "failed" and run["error"]["stepId"] == "x"
    assert "template" in run["error"]["message"]
    ok = orbin.create({"name": "Fine", "slug": "fine", "steps": [_transform("z", 1)]})
    assert orbin.wait(orbin.start(ok))["status"] == "completed"


def test_an_http_step_cannot_reach_the_prefect_server(orbin, svc) -> None:
    internal = orbin.prefect.replace("127.0.0.1", "localhost") + "/flow_runs/filter"
    bounce = svc.script(_path("bounce"), Answer(302, headers={"location": internal}))
    wf = orbin.create(
        {
            "name": "Ssrf",
            "slug": "ssrf",
            "steps": [
                _http("direct", internal, method="POST", body={}, retryPolicy={"maxAttempts": 3})
            ],
        }
    )
    run = orbin.wait(orbin.start(wf))
    assert run["status"] == "failed" and "refused" in run["error"]["message"]
    assert len(run["steps"]) == 1, "refused at once, not retried"
    wf = orbin.create({"name": "Bounce", "slug": "bounce", "steps": [_http("via", bounce)]})
    run = orbin.wait(orbin.start(wf))
    assert run["status"] == "failed" and "refused" in run["error"]["message"]


def test_a_short_delay_waits_on_the_worker(orbin) -> None:
    wf = orbin.create(
        {
            "name": "Nap",
            "slug": "nap",
            "steps": [
                {"id": "nap", "name": "Nap", "type": "delay", "config": {"seconds": 1.2}},
                {
                    "id": "until",
                    "name": "Until",
                    "type": "delay",
                    "config": {"until": "{{ trigger.data.at }}"},
                },
                _transform("after", "{{ steps.nap.output.waitedSeconds >= 1.2 }}"),
            ],
        }
    )
    at = datetime.now(UTC) + timedelta(seconds=2.5)
    run = orbin.wait(orbin.start(wf, {"at": at.isoformat()}))
    assert run["status"] == "completed" and run["result"] is True
    steps = orbin.steps(run)
    assert steps["nap"]["durationMs"] >= 1200
    assert steps["until"]["completedAt"] >= at.timestamp() * 1000 - 50


def test_runs_keep_the_version_they_started_with(orbin, svc) -> None:
    path = _path("pin")
    gate = svc.hold(path)
    spec = {
        "name": "Pinned",
        "slug": f"pinned-{uuid.uuid4().hex[:6]}",
        "trigger": {"type": "manual"},
        "steps": [_http("wait", svc.url + path), _transform("which", "v1")],
    }
    wf = orbin.create(spec, unique=False)
    first = orbin.start(wf)
    svc.wait_for(path)
    v2 = {**spec, "status": "active", "steps": [spec["steps"][0], _transform("which", "v2")]}
    resp = orbin.call("PUT", f"/v1/workflows/{wf}", json=v2)
    assert resp.status_code == 200 and resp.json()["version"] == 2, resp.text
    gate.set()
    run = orbin.wait(first)
    assert (run["workflowVersion"], run["result"]) == (1, "v1")
    run = orbin.wait(orbin.start(wf))
    assert (run["workflowVersion"], run["result"]) == (2, "v2")


def test_cancel_stops_a_running_run_and_its_flow_run(orbin, svc) -> None:
    path, after = _path("held"), _path("after")
    gate = svc.hold(path)
    wf = orbin.create(
        {
            "name": "Cancel",
            "slug": "cancel",
            "steps": [_http("wait", svc.url + path), _http("after", svc.url + after)],
        }
    )
    run_id = orbin.start(wf)
    svc.wait_for(path)
    resp = orbin.call("POST", f"/v1/runs/{run_id}/cancel")
    assert resp.status_code == 202 and resp.json()["cancelRequested"] is True
    answered = resp.json()  # the run as it is now: its worker has yet to stop it
    assert answered["status"] == "running" and answered["durationMs"] is None
    assert orbin.steps(answered)["wait"]["status"] == "running"
    run = orbin.wait(run_id, seconds=20)
    gate.set()
    assert run["status"] == "canceled" and run["durationMs"] is not None
    assert orbin.steps(run)["wait"]["status"] == "canceled"
    assert orbin.steps(run)["wait"]["error"]["message"] == "canceled"
    assert svc.count(after) == 0
    orbin.wait_flow_run(run["prefectFlowRunId"], "CANCELLED")
    assert orbin.call("POST", f"/v1/runs/{run_id}/cancel").status_code == 409


def test_cancelling_the_flow_run_in_prefect_cancels_the_run(orbin, svc) -> None:
    path = _path("held-prefect")
    gate = svc.hold(path)
    wf = orbin.create(
        {"name": "Ops cancel", "slug": "ops-cancel", "steps": [_http("wait", svc.url + path)]}
    )
    run_id = orbin.start(wf)
    svc.wait_for(path)
    fr = orbin.run(run_id)["prefectFlowRunId"]
    resp = httpx.post(
        f"{orbin.prefect}/flow_runs/{fr}/set_state",
        json={"state": {"type": "CANCELLING", "name": "Cancelling"}, "force": True},
    )
    assert resp.status_code in (200, 201), resp.text
    run = orbin.wait(run_id, seconds=20)
    gate.set()
    assert run["status"] == "canceled"
    orbin.wait_flow_run(fr, "CANCELLED")


def test_resume_continues_from_the_failed_step_and_replay_runs_everything(orbin, svc) -> None:
    one, two, three = _path("one"), _path("two"), _path("three")
    svc.script(one, Answer(200, {"token": "abc"}))
    svc.script(two, Answer(500, {"error": "down"}))
    wf = orbin.create(
        {
            "name": "Resume",
            "slug": "resume",
            "steps": [
                _http("one", svc.url + one),
                _http(
                    "two",
                    svc.url + two,
                    body={"token": "{{ steps.one.output.body.token }}"},
                    method="POST",
                ),
                _http("three", svc.url + three),
            ],
        }
    )
    failed_id = orbin.start(wf, {"k": 1})
    failed = orbin.wait(failed_id)
    assert failed["status"] == "failed" and failed["error"]["stepId"] == "two"
    assert (svc.count(one), svc.count(two), svc.count(three)) == (1, 1, 0)

    svc.script(two, Answer(200, {"ok": True}))
    resp = orbin.call("POST", f"/v1/runs/{failed_id}/resume")
    assert resp.status_code == 202, resp.text
    resumed = orbin.wait(resp.json()["runId"])
    assert resumed["status"] == "completed", resumed
    assert resumed["parentRunId"] == failed_id
    assert (svc.count(one), svc.count(two), svc.count(three)) == (1, 2, 1), "one not re-run"
    assert svc.hits[two][-1].body == {"token": "abc"}, "the carried output feeds the next step"
    assert [s["stepId"] for s in resumed["steps"]] == ["one", "two", "three"]
    assert orbin.run(failed_id)["status"] == "failed"

    resp = orbin.call("POST", f"/v1/runs/{failed_id}/replay")
    replayed = orbin.wait(resp.json()["runId"])
    assert replayed["status"] == "completed" and replayed["parentRunId"] == failed_id
    assert replayed["triggerData"] == failed["triggerData"]
    assert (svc.count(one), svc.count(two), svc.count(three)) == (2, 3, 2)
