"""Executing one run inside its Prefect flow: every step attempt recorded, as it happens.

The flow body (see compiler.py) builds a RunExecutor; each step is a Prefect task whose body
calls back into the executor. Step outputs a run already completed (a resumed run, or one
recovered from a dead worker) are reused, never executed twice.
"""

from __future__ import annotations

import asyncio
import traceback
from datetime import datetime
from typing import Any

from prefect.context import TaskRunContext

from orbin_flows.actions import FatalStepError, RetryableStepError, get_action
from orbin_flows.actions.base import StepContext
from orbin_flows.plan import RunPlan
from orbin_flows.spec import ConditionConfig, DelayConfig, LoopConfig, RetryPolicy
from orbin_flows.templates import TemplateRenderError, evaluate, render
from tenancy import runs as runs_repo
from tenancy.clock import now_ms
from tenancy.config import get_settings
from tenancy.db import session_scope
from tenancy.models import StepExecution

# Runs executing in this process, by run id and by Prefect flow-run id (for task callbacks).
EXECUTORS: dict[str, RunExecutor] = {}
BY_FLOW_RUN: dict[str, RunExecutor] = {}

# Delays up to this long are waited in-process; longer ones release the worker (see Suspend).
INLINE_DELAY_SECONDS = 30.0


class StepFailed(Exception):
    def __init__(self, step_id: str, message: str, stack: str | None, timed_out: bool) -> None:
        super().__init__(message)
        self.step_id = step_id
        self.message = message
        self.stack = stack
        self.timed_out = timed_out


class Suspend(Exception):
    """A long delay: the run leaves the worker and comes back at ``resume_at``."""

    def __init__(self, resume_at: int) -> None:
        super().__init__(f"suspended until {resume_at}")
        self.resume_at = resume_at


def retry_policy(step: dict[str, Any], default: dict[str, Any]) -> RetryPolicy:
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
        self.index = _index(plan.spec)
        self.lease_ms = get_settings().worker_lease_seconds * 1000

    # --- the run ------------------------------------------------------------------------

    async def execute(self, flow_run_id: str | None) -> Any:
        run = self.run
        EXECUTORS[run.id] = self
        if flow_run_id:
            BY_FLOW_RUN[flow_run_id] = self
        try:
            with session_scope() as session:
                runs_repo.mark_run_running(
                    session, run=run, worker_id=self.worker_id, lease_ms=self.lease_ms
                )
                self.plan.completed = runs_repo.completed_step_outputs(
                    session, organization_id=run.organization_id, run_id=run.id
                )
                # An attempt a dead worker left running is over: it is tried again.
                session.query(StepExecution).filter(
                    StepExecution.workflow_run_id == run.id, StepExecution.status == "running"
                ).update(
                    {
                        "status": "failed",
                        "error": {"message": "the worker running it was lost"},
                        "completed_at": now_ms(),
                    }
                )
            self.context = {
                "trigger": run.trigger_data or {},
                "steps": {k: {"output": v} for k, v in self.plan.completed.items()},
                "run": {"id": run.id, "workflowVersion": run.workflow_version},
            }
            timeout = self.plan.spec.get("timeoutSeconds")
            async with asyncio.timeout(timeout):
                await self.run_steps(self.plan.spec.get("steps", []), self.context, "")
        except StepFailed as exc:
            status = "timed_out" if exc.timed_out else "failed"
            self._finish(
                status, error={"message": exc.message, "stack": exc.stack, "stepId": exc.step_id}
            )
            raise
        except Suspend as exc:
            with session_scope() as session:
                runs_repo.suspend_run(session, run=run, resume_at=exc.resume_at)
            raise
        except TimeoutError:
            self._finish(
                "timed_out", error={"message": f"the run exceeded its timeout of {timeout}s"}
            )
            raise
        except asyncio.CancelledError:
            self._finish("canceled", error={"message": "canceled"})
            raise
        except Exception as exc:
            self._finish("failed", error=_error(exc))
            raise
        finally:
            EXECUTORS.pop(run.id, None)
            if flow_run_id:
                BY_FLOW_RUN.pop(flow_run_id, None)
        self._finish("completed", result=self.last_output)
        return self.last_output

    def _finish(self, status: str, result: Any = None, error: dict[str, Any] | None = None) -> None:
        with session_scope() as session:
            runs_repo.finish_run(session, run=self.run, status=status, result=result, error=error)

    async def run_steps(self, steps: list[dict[str, Any]], ctx: dict[str, Any], prefix: str) -> Any:
        output = None
        for step in steps:
            output = await self.run_step(step, ctx, prefix)
        return output

    async def run_step(self, step: dict[str, Any], ctx: dict[str, Any], prefix: str) -> Any:
        key = prefix + step["id"]
        if step["type"] == "condition":
            output = await self._condition(step, ctx, key)
        elif key in self.plan.completed:
            output = self.plan.completed[key]
        elif step["type"] == "loop":
            output = await self._loop(step, ctx, key)
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

    async def _condition(self, step: dict[str, Any], ctx: dict[str, Any], key: str) -> Any:
        cfg = ConditionConfig.model_validate(step["config"])
        prefix = key[: -len(step["id"])]
        result = self.plan.completed.get(key) or await self._task(step, ctx, key)
        branch, skipped = (cfg.then, cfg.else_) if result["result"] else (cfg.else_, cfg.then)
        if key not in self.plan.completed:
            self._record_skipped(skipped, key_prefix=prefix)
        branch_dicts = [s.model_dump(mode="json", by_alias=True, exclude_none=True) for s in branch]
        inner = await self.run_steps(branch_dicts, ctx, prefix)
        return {**result, "output": inner}

    async def _loop(self, step: dict[str, Any], ctx: dict[str, Any], key: str) -> Any:
        cfg = LoopConfig.model_validate(step["config"])
        try:
            items = render(cfg.items, ctx)
        except TemplateRenderError as exc:
            raise StepFailed(key, str(exc), None, False) from exc
        if not isinstance(items, list):
            raise StepFailed(
                key, f"loop items must render to a list, got {type(items).__name__}", None, False
            )
        with session_scope() as session:
            record = runs_repo.start_step(
                session,
                run=self.run,
                step_id=key,
                step_name=step["name"],
                step_type="loop",
                attempt=1,
                max_attempts=1,
                input={"items": len(items), "concurrency": cfg.concurrency},
            )
        gate = asyncio.Semaphore(cfg.concurrency)
        inner_steps = [
            s.model_dump(mode="json", by_alias=True, exclude_none=True) for s in cfg.steps
        ]

        async def one(index: int, item: Any) -> Any:
            async with gate:
                local = {**ctx, cfg.itemName: item, "index": index, "steps": dict(ctx["steps"])}
                return await self.run_steps(inner_steps, local, f"{key}[{index}].")

        try:
            outputs = await asyncio.gather(*(one(i, it) for i, it in enumerate(items)))
        except StepFailed as exc:
            with session_scope() as session:
                runs_repo.finish_step(
                    session,
                    step=record,
                    status="failed",
                    error={"message": exc.message, "stack": exc.stack},
                )
            raise
        with session_scope() as session:
            runs_repo.finish_step(session, step=record, status="completed", output=outputs)
        return outputs

    def _record_skipped(self, steps: list[Any], key_prefix: str) -> None:
        if not steps:
            return
        with session_scope() as session:
            for s in steps:
                rec = runs_repo.start_step(
                    session,
                    run=self.run,
                    step_id=key_prefix + s.id,
                    step_name=s.name,
                    step_type=s.type,
                    attempt=1,
                    max_attempts=1,
                    input=None,
                )
                runs_repo.finish_step(session, step=rec, status="skipped")

    # --- one attempt, inside the step's Prefect task -------------------------------------

    def find_step(self, key: str) -> dict[str, Any]:
        step_id = key.rsplit(".", 1)[-1]
        return self.index.get(step_id) or {}

    async def attempt(self, key: str) -> Any:
        step = self.find_step(key)
        ctx = self.ctx_for.get(key, self.context)
        task_ctx = TaskRunContext.get()
        attempt = task_ctx.task_run.run_count if task_ctx else 1
        policy = retry_policy(step, self.plan.default_retry)
        try:
            config = render(step.get("config") or {}, ctx)
        except TemplateRenderError as exc:
            config, render_error = step.get("config"), exc
        else:
            render_error = None
        with session_scope() as session:
            record = runs_repo.start_step(
                session,
                run=self.run,
                step_id=key,
                step_name=step.get("name", key),
                step_type=step.get("type", "action"),
                attempt=attempt,
                max_attempts=policy.maxAttempts,
                input=config,
            )
        timed_out = False
        try:
            try:
                if render_error is not None:
                    raise FatalStepError(str(render_error))
                async with asyncio.timeout(step.get("timeoutSeconds")):
                    output = await self._perform(step, config, key, attempt, ctx)
            except Suspend as exc:
                self._no_retry(task_ctx)  # not a failure: no Prefect retry
                with session_scope() as session:
                    runs_repo.finish_step(
                        session,
                        step=record,
                        status="pending",
                        output={"resumeAt": exc.resume_at},
                        next_retry_at=exc.resume_at,
                    )
                raise
        except Exception as exc:
            if isinstance(exc, TimeoutError):
                timed_out = True
                exc = RetryableStepError(f"step timed out after {step.get('timeoutSeconds')}s")
            last = attempt >= policy.maxAttempts or isinstance(exc, FatalStepError)
            delays = policy.delays_ms()
            err = _error(exc)
            with session_scope() as session:
                if last:
                    runs_repo.finish_step(session, step=record, status="failed", error=err)
                else:
                    runs_repo.finish_step(
                        session,
                        step=record,
                        status="retrying",
                        error=err,
                        next_retry_at=now_ms() + delays[attempt - 1],
                    )
            if last:
                self._no_retry(task_ctx)
                raise StepFailed(key, err["message"], err["stack"], timed_out) from exc
            raise
        with session_scope() as session:
            runs_repo.finish_step(session, step=record, status="completed", output=output)
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
            cfg = DelayConfig.model_validate(step.get("config") or {})
            if cfg.seconds is not None:
                seconds = float(cfg.seconds)
            else:
                until = datetime.fromisoformat(str(config.get("until")).replace("Z", "+00:00"))
                seconds = max(0.0, until.timestamp() - now_ms() / 1000)
            if self.run.resume_at is not None:  # back from a long delay: wait what is left
                seconds = max(0.0, (self.run.resume_at - now_ms()) / 1000)
                self.run.resume_at = None
            elif seconds > INLINE_DELAY_SECONDS:
                raise Suspend(now_ms() + int(seconds * 1000))
            await asyncio.sleep(seconds)
            return {"waitedSeconds": seconds}
        raise FatalStepError(f"unknown step type {kind!r}")


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
