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
from typing import TYPE_CHECKING, Any

from prefect.context import TaskRunContext

from orbin_flows.actions import FatalStepError, RetryableStepError, get_action
from orbin_flows.actions.base import StepContext
from orbin_flows.runtime.prefect_states import abort_canceled, suspend_flow_run
from orbin_flows.runtime.records import StepRecords
from orbin_flows.runtime.run_artifacts import publish_run_artifacts
from orbin_flows.runtime.step_kit import (  # noqa: F401 - part of the engine's interface
    StepFailed,
    Suspend,
    _error,
    _step_end,
    delay_seconds,
    retry_policy,
    step_index,
)
from orbin_flows.templates import TemplateRenderError, evaluate, render
from telemetry import metrics, tracing
from telemetry.logs import bound
from tenancy import history as history_repo
from tenancy import runs as runs_repo
from tenancy import steps as steps_repo
from tenancy.clock import now_ms
from tenancy.config import get_settings
from tenancy.db import session_scope
from tenancy.recorder import get_recorder
from tenancy.run_plans import RunPlan

if TYPE_CHECKING:
    from orbin_flows.runtime.active import ActiveRuns

log = logging.getLogger("orbin.engine")

MAX_LOOP_ITEMS = 10_000


class RunExecutor(StepRecords):
    def __init__(
        self, plan: RunPlan, tasks: dict[str, Any], worker_id: str, active: ActiveRuns
    ) -> None:
        self.plan = plan
        self.active = active
        self.run = plan.run
        self.tasks = tasks
        self.worker_id = worker_id
        self.fatal: set[str] = set()
        self.context: dict[str, Any] = {}
        self.last_output: Any = None
        self.ctx_for: dict[str, dict[str, Any]] = {}
        self.delays: dict[str, float] = {}
        self.index = step_index(plan.spec)
        settings = get_settings()
        self.lease_ms = settings.worker_lease_seconds * 1000
        self.inline_delay = settings.inline_delay_seconds
        self.history = history_repo.StepHistory({}, {}, {})
        self.deadline: float | None = None
        self.lost = False  # another worker took the run over: stop without recording
        self.recorder = get_recorder()

    # --- the run ------------------------------------------------------------------------

    async def execute(self, flow_run_id: str | None) -> Any:
        with bound(org=self.plan.organization_slug, runId=self.run.id):
            try:
                if not tracing.enabled():
                    return await self._execute(flow_run_id)
                return await self._traced(flow_run_id)
            finally:
                await publish_run_artifacts(self, flow_run_id)

    async def _traced(self, flow_run_id: str | None) -> Any:
        with tracing.tracer().start_as_current_span(
            f"run {self.plan.workflow_slug}",
            context=tracing.context_of(self.run.trace_parent),
            attributes={
                "orbin.org": self.plan.organization_slug,
                "orbin.run_id": self.run.id,
                "orbin.workflow": self.plan.workflow_slug,
                "prefect.flow_run_id": flow_run_id or "",
            },
        ):
            return await self._execute(flow_run_id)

    async def _execute(self, flow_run_id: str | None) -> Any:
        run = self.run
        self.active.add(self, flow_run_id)
        timeout: float | None = None
        try:
            if not await asyncio.to_thread(self._begin):
                await abort_canceled(flow_run_id)
                return None
            metrics.RUNS_STARTED.labels(self.plan.organization_slug).inc()
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
            error = {"message": exc.message, "stack": exc.stack, "stepId": exc.step_id}
            self._finish(status, error={k: v for k, v in error.items() if v is not None})
            raise
        except Suspend as exc:
            await asyncio.to_thread(self._suspend, exc.resume_at)
            await suspend_flow_run(flow_run_id, exc)
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
            self.active.remove(run.id, flow_run_id)
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
            steps_repo.abandon_unfinished_steps(
                session, run_id=run.id, message="the worker running this attempt was lost"
            )
            self.history = history_repo.read_step_history(
                session, organization_id=run.organization_id, run_id=run.id
            )
        self.plan.completed = self._loaded(dict(self.history.completed))
        return True

    def _suspend(self, resume_at: int) -> None:
        self.recorder.flush_sync()
        with session_scope() as session:
            runs_repo.suspend_run(session, run=self.run, resume_at=resume_at)

    def _finish(self, status: str, result: Any = None, error: dict[str, Any] | None = None) -> None:
        self.recorder.flush_sync()  # the run's step records first, then its outcome
        if status == "completed":
            result = self._result_of(result)
        with session_scope() as session:
            if status != "completed":
                why = "canceled" if status == "canceled" else f"the run {status.replace('_', ' ')}"
                steps_repo.abandon_unfinished_steps(
                    session, run_id=self.run.id, message=why, status=_step_end(status)
                )
            runs_repo.finish_run(session, run=self.run, status=status, result=result, error=error)
        metrics.RUNS_FINISHED.labels(self.plan.organization_slug, status).inc()

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
        stored = await self._stored_output(key, results)
        await asyncio.to_thread(self._finish_record, record, "completed", stored, None)
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
        attempt_no = base + run_count  # after a takeover the budget stays (history.budget)
        max_attempts = self.history.budget(key, base, attempt_no, base + policy.maxAttempts)
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
                with bound(stepId=key):
                    if tracing.enabled():
                        with tracing.tracer().start_as_current_span(
                            f"step {key}",
                            attributes={"orbin.step": key, "orbin.attempt": attempt_no},
                        ):
                            output = await self._perform(step, config, key, base + run_count, ctx)
                    else:
                        output = await self._perform(step, config, key, base + run_count, ctx)
        except asyncio.CancelledError:
            loop = asyncio.get_running_loop()
            timed_out = self.deadline is not None and loop.time() >= self.deadline - 0.05
            why = "the run exceeded its timeout" if timed_out else "canceled"
            if self.lost:
                why = "this worker lost the run to another (its lease had expired)"
            self._finish_record(record, _step_end(why), None, {"message": why})
            raise
        except Exception as exc:
            timed_out = isinstance(exc, TimeoutError)
            if timed_out:
                exc = RetryableStepError(f"step timed out after {step.get('timeoutSeconds')}s")
            last = attempt_no >= max_attempts or isinstance(exc, FatalStepError)
            err = _error(exc, f"step {key} attempt {attempt_no}")
            if last:
                self._finish_record(record, "failed", None, err)
                self._no_retry(task_ctx)
                raise StepFailed(key, err["message"], err.get("stack"), timed_out) from exc
            wait = policy.delays_ms()[run_count - 1]
            self._finish_record(record, "retrying", None, err, now_ms() + wait)
            raise
        if step.get("type") == "delay":  # the whole wait, a suspension included
            output = {"waitedSeconds": round((now_ms() - (record.started_at or 0)) / 1000, 3)}
        self._finish_record(record, "completed", await self._stored_output(key, output), None)
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
