"""Executing one run inside its Prefect flow: every step attempt recorded, as it happens.

The flow body (see compiler.py) builds a RunExecutor; each step is a Prefect task whose body
calls back into the executor. What a run already did is read when it starts on a worker:
completed steps (a run recovered from a dead worker, or resuming after a long delay) are
reused, never executed again; a delay it was waiting on continues where it stopped.

A delay longer than ``inline_delay_seconds`` does not hold a worker: the run is *suspended*
(Orbin: ``resume_at`` set, no worker; Prefect: the flow run goes to ``Suspended``), and a
worker resumes the same flow run when the time comes (see worker.py).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from prefect.context import FlowRunContext, TaskRunContext

from orbin_flows.actions import FatalStepError, RetryableStepError, get_action
from orbin_flows.actions.base import StepContext
from orbin_flows.plan import RunPlan
from orbin_flows.spec import RetryPolicy
from orbin_flows.templates import TemplateRenderError, evaluate, render
from tenancy import runs as runs_repo
from tenancy.clock import now_ms
from tenancy.config import get_settings
from tenancy.db import session_scope
from tenancy.models import StepExecution
from tenancy.recorder import get_recorder

log = logging.getLogger("orbin.engine")

# Runs executing in this process, by run id and by Prefect flow-run id (for task callbacks).
EXECUTORS: dict[str, RunExecutor] = {}
BY_FLOW_RUN: dict[str, RunExecutor] = {}

MAX_LOOP_ITEMS = 10_000


class StepFailed(Exception):
    def __init__(self, step_id: str, message: str, stack: str | None, timed_out: bool) -> None:
        super().__init__(message)
        self.step_id = step_id
        self.message = message
        self.stack = stack
        self.timed_out = timed_out


class Suspend(Exception):
    """A long delay: the run leaves the worker and comes back at ``resume_at``."""

    def __init__(self, resume_at: int, key: str) -> None:
        super().__init__(f"suspended until {resume_at}")
        self.resume_at = resume_at
        self.key = key


def retry_policy(step: dict[str, Any], default: dict[str, Any]) -> RetryPolicy:
    """The step's own policy, else the organization's default (actions only), else none."""
    if step.get("retryPolicy"):
        return RetryPolicy.model_validate(step["retryPolicy"])
    if step.get("type") == "action" and default:
        return RetryPolicy.model_validate(default)
    return RetryPolicy(maxAttempts=1)


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "message": str(exc) or exc.__class__.__name__,
        "stack": "".join(traceback.format_exception(exc)).strip()[-8000:],
    }


def delay_seconds(config: dict[str, Any]) -> float:
    """Seconds to wait for a rendered delay config (``seconds``, or ``until`` an ISO time)."""
    if config.get("seconds") is not None:
        return max(0.0, float(config["seconds"]))
    until = datetime.fromisoformat(str(config.get("until")).replace("Z", "+00:00"))
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)
    return max(0.0, until.timestamp() - now_ms() / 1000)


class RunExecutor:
    def __init__(self, plan: RunPlan, tasks: dict[str, Any], worker_id: str) -> None:
        self.plan = plan
        self.run = plan.run
        self.tasks = tasks
        self.worker_id = worker_id
        self.fatal: set[str] = set()
        self.context: dict[str, Any] = {}
        self.last_output: Any = None
        self.ctx_for: dict[str, dict[str, Any]] = {}
        self.delays: dict[str, float] = {}
        self.index = _index(plan.spec)
        settings = get_settings()
        self.lease_ms = settings.worker_lease_seconds * 1000
        self.inline_delay = settings.inline_delay_seconds
        self.history = runs_repo.StepHistory({}, {}, {})
        self.deadline: float | None = None
        self.lost = False  # another worker took the run over: stop without recording
        self.recorder = get_recorder()

    # --- the run ------------------------------------------------------------------------

    async def execute(self, flow_run_id: str | None) -> Any:
        run = self.run
        EXECUTORS[run.id] = self
        if flow_run_id:
            BY_FLOW_RUN[flow_run_id] = self
        timeout: float | None = None
        try:
            if not await asyncio.to_thread(self._begin):
                await _abort_canceled(flow_run_id)
                return None
            self.context = {
                "trigger": run.trigger_data or {},
                "steps": {k: {"output": v} for k, v in self.plan.completed.items()},
                "run": {"id": run.id, "workflowVersion": run.workflow_version},
            }
            timeout = self.plan.spec.get("timeoutSeconds")
            remaining = None
            if timeout:
                # Counted from the run's start: a suspended run's wait counts too.
                remaining = (run.started_at or now_ms()) / 1000 + timeout - now_ms() / 1000
                self.deadline = asyncio.get_running_loop().time() + remaining
            async with asyncio.timeout(remaining):
                await self.run_steps(self.plan.spec.get("steps", []), self.context, "")
        except StepFailed as exc:
            status = "timed_out" if exc.timed_out else "failed"
            self._finish(
                status, error={"message": exc.message, "stack": exc.stack, "stepId": exc.step_id}
            )
            raise
        except Suspend as exc:
            await asyncio.to_thread(self._suspend, exc.resume_at)
            await _suspend_flow_run(flow_run_id, exc)
            return None
        except TimeoutError:
            self._finish(
                "timed_out", error={"message": f"the run exceeded its timeout of {timeout}s"}
            )
            raise
        except asyncio.CancelledError:
            if not self.lost:
                self._finish("canceled", error={"message": "canceled"})
            raise
        except Exception as exc:
            self._finish("failed", error=_error(exc))
            raise
        finally:
            EXECUTORS.pop(run.id, None)
            if flow_run_id:
                BY_FLOW_RUN.pop(flow_run_id, None)
        await self.recorder.flush()
        await asyncio.to_thread(self._finish, "completed", self.last_output)
        return self.last_output

    def _begin(self) -> bool:
        run = self.run
        with session_scope() as session:
            if not runs_repo.mark_run_running(
                session, run=run, worker_id=self.worker_id, lease_ms=self.lease_ms
            ):
                runs_repo.finish_run(
                    session, run=run, status="canceled", error={"message": "canceled"}
                )
                return False
            runs_repo.abandon_unfinished_steps(
                session, run_id=run.id, message="the worker running this attempt was lost"
            )
            self.history = runs_repo.read_step_history(
                session, organization_id=run.organization_id, run_id=run.id
            )
        self.plan.completed = dict(self.history.completed)
        return True

    def _suspend(self, resume_at: int) -> None:
        self.recorder.flush_sync()
        with session_scope() as session:
            runs_repo.suspend_run(session, run=self.run, resume_at=resume_at)

    def _finish(self, status: str, result: Any = None, error: dict[str, Any] | None = None) -> None:
        self.recorder.flush_sync()  # the run's step records first, then its outcome
        with session_scope() as session:
            if status != "completed":
                why = "canceled" if status == "canceled" else f"the run {status.replace('_', ' ')}"
                runs_repo.abandon_unfinished_steps(session, run_id=self.run.id, message=why)
            runs_repo.finish_run(session, run=self.run, status=status, result=result, error=error)

    async def run_steps(self, steps: list[dict[str, Any]], ctx: dict[str, Any], prefix: str) -> Any:
        output = None
        for step in steps:
            output = await self.run_step(step, ctx, prefix)
        return output

    async def run_step(self, step: dict[str, Any], ctx: dict[str, Any], prefix: str) -> Any:
        key = prefix + step["id"]
        kind = step.get("type")
        if kind == "condition":
            output = await self._condition(step, ctx, key, prefix)
        elif key in self.plan.completed:
            output = self.plan.completed[key]
        elif kind == "loop":
            output = await self._loop(step, ctx, key)
        elif kind == "delay":
            output = await self._delay(step, ctx, key)
        else:
            output = await self._task(step, ctx, key)
        ctx["steps"][step["id"]] = {"output": output}
        self.last_output = output
        return output

    async def _task(self, step: dict[str, Any], ctx: dict[str, Any], key: str) -> Any:
        self.ctx_for[key] = ctx
        try:
            return await self.tasks[step["id"]](self.run.id, key)
        finally:
            self.ctx_for.pop(key, None)

    # --- control steps ------------------------------------------------------------------

    async def _condition(
        self, step: dict[str, Any], ctx: dict[str, Any], key: str, prefix: str
    ) -> Any:
        """The expression is the step's task; the branch not taken is recorded ``skipped``."""
        cfg = step.get("config") or {}
        result = self.plan.completed.get(key)
        if result is None:
            result = await self._task(step, ctx, key)
            skipped = cfg.get("else") if result["result"] else cfg.get("then")
            await asyncio.to_thread(self._record_skipped, skipped or [], prefix)
        branch = cfg.get("then") if result["result"] else cfg.get("else")
        inner = await self.run_steps(branch or [], ctx, prefix)
        return {**result, "output": inner}

    async def _loop(self, step: dict[str, Any], ctx: dict[str, Any], key: str) -> Any:
        """Nested steps for each item, ``concurrency`` items at a time; outputs in item order.

        A failing item stops new items from starting; those under way finish first. A long
        delay inside suspends the run once every started item has finished or is waiting."""
        cfg = step.get("config") or {}
        try:
            items = render(cfg.get("items"), ctx)
        except TemplateRenderError as exc:
            raise StepFailed(key, str(exc), None, False) from exc
        if not isinstance(items, list):
            raise StepFailed(
                key, f"loop items must render to a list, got {type(items).__name__}", None, False
            )
        if len(items) > MAX_LOOP_ITEMS:
            raise StepFailed(key, f"a loop takes at most {MAX_LOOP_ITEMS} items", None, False)
        record = await asyncio.to_thread(
            self._start_record,
            key,
            step,
            1,
            1,
            {"items": len(items), "concurrency": cfg.get("concurrency", 4)},
        )
        gate = asyncio.Semaphore(int(cfg.get("concurrency", 4)))
        item_name = cfg.get("itemName", "item")
        inner_steps = cfg.get("steps") or []
        stop: list[BaseException] = []

        async def one(index: int, item: Any) -> Any:
            async with gate:
                if stop:
                    return None
                local = {**ctx, item_name: item, "index": index, "steps": dict(ctx["steps"])}
                try:
                    return await self.run_steps(inner_steps, local, f"{key}[{index}].")
                except (StepFailed, Suspend) as exc:
                    if isinstance(exc, StepFailed):
                        stop.append(exc)
                    raise

        results = await asyncio.gather(
            *(one(i, it) for i, it in enumerate(items)), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        first = next((r for r in failures if not isinstance(r, Suspend)), None)
        if first is not None:
            await asyncio.to_thread(
                self._finish_record, record, "failed", None, {"message": str(first)}
            )
            raise first
        if failures:
            await asyncio.to_thread(
                self._finish_record,
                record,
                "failed",
                None,
                {"message": "suspended by a delay; continues when the run resumes"},
            )
            raise min(failures, key=lambda s: s.resume_at)  # type: ignore[union-attr]
        await asyncio.to_thread(self._finish_record, record, "completed", results, None)
        return results

    async def _delay(self, step: dict[str, Any], ctx: dict[str, Any], key: str) -> Any:
        waiting = self.history.waiting.get(key)
        if waiting is not None:  # back from a suspension: wait what is left
            seconds = max(0.0, (waiting[1] - now_ms()) / 1000)
            if seconds > self.inline_delay:
                raise Suspend(waiting[1], key)
        else:
            try:
                config = render(step.get("config") or {}, ctx)
                seconds = delay_seconds(config)
            except (TemplateRenderError, ValueError, TypeError) as exc:
                raise StepFailed(key, f"invalid delay: {exc}", None, False) from exc
            if seconds > self.inline_delay:
                resume_at = now_ms() + int(seconds * 1000)
                await asyncio.to_thread(self._record_waiting, step, key, config, resume_at)
                raise Suspend(resume_at, key)
        self.delays[key] = seconds
        return await self._task(step, ctx, key)

    def _record_waiting(self, step: dict[str, Any], key: str, config: Any, resume_at: int) -> None:
        with session_scope() as session:
            rec = runs_repo.start_step(
                session,
                run=self.run,
                step_id=key,
                step_name=step.get("name", key),
                step_type="delay",
                attempt=1,
                max_attempts=1,
                input=config,
            )
            runs_repo.finish_step(
                session,
                step=rec,
                status="pending",
                output={"resumeAt": resume_at},
                next_retry_at=resume_at,
            )
            rec.completed_at = None
            rec.duration_ms = None

    def _record_skipped(self, steps: list[dict[str, Any]], prefix: str) -> None:
        if not steps:
            return
        with session_scope() as session:
            for s in steps:
                rec = runs_repo.start_step(
                    session,
                    run=self.run,
                    step_id=prefix + s["id"],
                    step_name=s.get("name", s["id"]),
                    step_type=s.get("type", "action"),
                    attempt=1,
                    max_attempts=1,
                    input=None,
                )
                runs_repo.finish_step(session, step=rec, status="skipped")

    def _start_record(
        self, key: str, step: dict[str, Any], attempt: int, max_attempts: int, input: Any
    ) -> StepExecution:
        self.recorder.flush_sync()  # earlier attempts' records are written before these
        with session_scope() as session:
            waiting = self.history.waiting.pop(key, None)
            if waiting is not None:
                rec = session.get(StepExecution, waiting[0])
                if rec is not None:
                    rec.status = "running"
                    rec.next_retry_at = None
                    session.flush()
                    session.expunge(rec)
                    return rec
            if attempt > 1:
                runs_repo.settle_retrying_steps(session, run_id=self.run.id, step_id=key)
            rec = runs_repo.start_step(
                session,
                run=self.run,
                step_id=key,
                step_name=step.get("name", key),
                step_type=step.get("type", "action"),
                attempt=attempt,
                max_attempts=max_attempts,
                input=input,
            )
            session.expunge(rec)
            return rec

    def _finish_record(
        self,
        record: Any,
        status: str,
        output: Any,
        error: dict[str, Any] | None,
        next_retry_at: int | None = None,
    ) -> None:
        """Queued: the step goes on while the recorder writes (see tenancy/recorder.py)."""
        self.recorder.finish_step(
            record, status=status, output=output, error=error, next_retry_at=next_retry_at
        )

    # --- one attempt, inside the step's Prefect task -------------------------------------

    def find_step(self, key: str) -> dict[str, Any]:
        step_id = key.rsplit(".", 1)[-1]
        return self.index.get(step_id) or {}

    async def attempt(self, key: str) -> Any:
        step = self.find_step(key)
        ctx = self.ctx_for.get(key, self.context)
        task_ctx = TaskRunContext.get()
        run_count = task_ctx.task_run.run_count if task_ctx else 1
        base = self.history.attempts.get(key, 0)
        policy = retry_policy(step, self.plan.default_retry)
        render_error: TemplateRenderError | None = None
        config: Any
        if step.get("type") == "condition":
            config = {"expression": (step.get("config") or {}).get("expression")}
        elif step.get("type") == "delay":
            config = {"seconds": round(self.delays.get(key, 0.0), 3)}
        else:
            try:
                config = render(step.get("config") or {}, ctx)
            except TemplateRenderError as exc:
                config, render_error = step.get("config"), exc
        attempt_no, max_attempts = base + run_count, base + policy.maxAttempts
        if attempt_no == 1 and key not in self.history.waiting:  # the common case: queued
            record: Any = self.recorder.start_step(
                organization_id=self.run.organization_id,
                run_id=self.run.id,
                step_id=key,
                step_name=step.get("name", key),
                step_type=step.get("type", "action"),
                attempt=attempt_no,
                max_attempts=max_attempts,
                input=config,
            )
        else:
            record = await asyncio.to_thread(
                self._start_record, key, step, attempt_no, max_attempts, config
            )
        try:
            if render_error is not None:
                raise FatalStepError(str(render_error))
            async with asyncio.timeout(step.get("timeoutSeconds")):
                output = await self._perform(step, config, key, base + run_count, ctx)
        except asyncio.CancelledError:
            loop = asyncio.get_running_loop()
            timed_out = self.deadline is not None and loop.time() >= self.deadline - 0.05
            why = "the run exceeded its timeout" if timed_out else "canceled"
            if self.lost:
                why = "this worker lost the run to another (its lease had expired)"
            self._finish_record(record, "failed", None, {"message": why})
            raise
        except Exception as exc:
            timed_out = isinstance(exc, TimeoutError)
            if timed_out:
                exc = RetryableStepError(f"step timed out after {step.get('timeoutSeconds')}s")
            last = run_count >= policy.maxAttempts or isinstance(exc, FatalStepError)
            err = _error(exc)
            if last:
                self._finish_record(record, "failed", None, err)
                self._no_retry(task_ctx)
                raise StepFailed(key, err["message"], err["stack"], timed_out) from exc
            wait = policy.delays_ms()[run_count - 1]
            self._finish_record(record, "retrying", None, err, now_ms() + wait)
            raise
        if step.get("type") == "delay":  # the whole wait, a suspension included
            output = {"waitedSeconds": round((now_ms() - (record.started_at or 0)) / 1000, 3)}
        self._finish_record(record, "completed", output, None)
        return output

    def _no_retry(self, task_ctx: TaskRunContext | None) -> None:
        if task_ctx is not None:
            self.fatal.add(str(task_ctx.task_run.id))

    async def _perform(
        self, step: dict[str, Any], config: Any, key: str, attempt: int, ctx: dict[str, Any]
    ) -> Any:
        kind = step.get("type")
        if kind == "action":
            cls = get_action(config.get("action", ""))
            try:
                parsed = cls.Config.model_validate(config)
            except ValueError as exc:
                raise FatalStepError(f"invalid config after rendering: {exc}") from exc
            sctx = StepContext(
                organization_id=self.run.organization_id,
                organization_slug=self.plan.organization_slug,
                run_id=self.run.id,
                step_id=key,
                attempt=attempt,
            )
            return await cls().run(parsed, sctx)
        if kind == "condition":
            raw = (step.get("config") or {}).get("expression", "")
            try:
                value = evaluate(raw, ctx)
            except TemplateRenderError as exc:
                raise FatalStepError(str(exc)) from exc
            return {"result": bool(value), "branch": "then" if value else "else"}
        if kind == "delay":
            await asyncio.sleep(self.delays.pop(key, 0.0))
            return {}
        raise FatalStepError(f"unknown step type {kind!r}")


async def _suspend_flow_run(flow_run_id: str | None, exc: Suspend) -> None:
    """Prefect's side of a long delay: the flow run ends ``Suspended`` (not Failed), and the
    engine exits through Prefect's own ``Pause`` signal; a worker resumes it later."""
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.exceptions import Pause
    from prefect.states import Suspended

    ctx = FlowRunContext.get()
    if not flow_run_id or ctx is None or ctx.client is None:
        return
    when = datetime.fromtimestamp(exc.resume_at / 1000, UTC).isoformat(timespec="seconds")
    state = Suspended(
        pause_key=f"{exc.key}@{exc.resume_at}",
        message=f"Orbin: step {exc.key} waits until {when}; the run resumes then",
    )
    try:
        result = await ctx.client.set_flow_run_state(UUID(flow_run_id), state)
    except Exception as err:  # noqa: BLE001 - Orbin resumes the run whatever Prefect shows
        log.warning("could not suspend flow run %s in Prefect: %s", flow_run_id, err)
        return
    if result.status == SetStateStatus.ACCEPT and result.state is not None:
        raise Pause(state=result.state)
    log.warning("Prefect refused to suspend flow run %s: %s", flow_run_id, result.details)


async def _abort_canceled(flow_run_id: str | None) -> None:
    """A run canceled before it started: its flow run ends Cancelled, not Completed."""
    from prefect.exceptions import Abort
    from prefect.states import Cancelled

    ctx = FlowRunContext.get()
    if not flow_run_id or ctx is None or ctx.client is None:
        return
    try:
        await ctx.client.set_flow_run_state(
            UUID(flow_run_id), Cancelled(message="canceled in Orbin before it started"), force=True
        )
    except Exception as err:  # noqa: BLE001
        log.warning("could not cancel flow run %s in Prefect: %s", flow_run_id, err)
        return
    raise Abort("canceled in Orbin before it started")


def _index(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every step of a spec by id, nested steps included."""
    out: dict[str, dict[str, Any]] = {}

    def walk(steps: list[dict[str, Any]]) -> None:
        for s in steps:
            out[s["id"]] = s
            cfg = s.get("config") or {}
            if s.get("type") == "condition":
                walk(cfg.get("then") or [])
                walk(cfg.get("else") or [])
            elif s.get("type") == "loop":
                walk(cfg.get("steps") or [])

    walk(spec.get("steps", []))
    return out
