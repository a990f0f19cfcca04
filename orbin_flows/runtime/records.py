"""How a run's executor records its step attempts (rows in tenancy.steps)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from orbin_flows import results
from telemetry import metrics
from tenancy import steps as steps_repo
from tenancy.clock import now_ms
from tenancy.db import session_scope
from tenancy.steps import StepExecution

log = logging.getLogger("orbin.engine")


class StepRecords:
    """Part of ``RunExecutor`` (runtime/engine.py); uses its ``run``, ``history``, ``recorder``."""

    def _record_waiting(self, step: dict[str, Any], key: str, config: Any, resume_at: int) -> None:
        with session_scope() as session:
            steps_repo.record_waiting_step(
                session,
                run=self.run,
                step_id=key,
                step_name=step.get("name", key),
                input=config,
                resume_at=resume_at,
            )

    def _record_skipped(self, steps: list[dict[str, Any]], prefix: str) -> None:
        if not steps:
            return
        with session_scope() as session:
            for s in steps:
                rec = steps_repo.start_step(
                    session,
                    run=self.run,
                    step_id=prefix + s["id"],
                    step_name=s.get("name", s["id"]),
                    step_type=s.get("type", "action"),
                    attempt=1,
                    max_attempts=1,
                    input=None,
                )
                steps_repo.finish_step(session, step=rec, status="skipped")

    def _start_record(
        self, key: str, step: dict[str, Any], attempt: int, max_attempts: int, input: Any
    ) -> StepExecution:
        self.recorder.flush_sync()  # earlier attempts' records are written before these
        with session_scope() as session:
            waiting = self.history.waiting.pop(key, None)
            if waiting is not None:
                rec = steps_repo.resume_waiting_step(session, step_pk=waiting[0])
                if rec is not None:
                    return rec
            if attempt > 1:
                steps_repo.settle_retrying_steps(session, run_id=self.run.id, step_id=key)
            rec = steps_repo.start_step(
                session,
                run=self.run,
                step_id=key,
                step_name=step.get("name", key),
                step_type=step.get("type", "action"),
                attempt=attempt,
                max_attempts=max_attempts,
                input=input,
            )
            steps_repo.detach(session, rec)
            return rec

    async def _stored_output(self, key: str, output: Any) -> Any:
        """What the step row records: the output, or a reference to it stored out of line
        when it is large (orbin_flows/results.py). The run goes on with the full value."""
        encoded = results.encoded_if_oversized(output)
        if encoded is None:
            return output
        try:
            stored = await asyncio.to_thread(self._write_output, key, encoded)
        except Exception:  # noqa: BLE001 - storage down: keep it inline rather than lose it
            log.warning("could not store the output of %s out of line", key, exc_info=True)
            return output
        self.last_stored = (output, stored)
        return stored

    def _write_output(self, key: str, encoded: bytes) -> Any:
        results.register_s3_block(self.plan.organization_slug)
        return results.write_output(
            organization_id=self.run.organization_id,
            organization_slug=self.plan.organization_slug,
            run_id=self.run.id,
            step_key=key,
            encoded=encoded,
        )

    def _store_sync(self, key: str, output: Any) -> Any:
        encoded = results.encoded_if_oversized(output)
        return output if encoded is None else self._write_output(key, encoded)

    def _result_of(self, output: Any) -> Any:
        """The run's result: its last output, by the same reference when that was stored."""
        last = getattr(self, "last_stored", None)
        if last is not None and last[0] is output:
            return last[1]
        try:
            return self._store_sync("result", output)
        except Exception:  # noqa: BLE001 - as for a step's output: inline rather than lost
            log.warning("could not store the run's result out of line", exc_info=True)
            return output

    def _loaded(self, completed: dict[str, Any]) -> dict[str, Any]:
        """Outputs read back for a run that resumes: references become their values."""
        return results.load_values(organization_id=self.run.organization_id, outputs=completed)

    def _finish_record(
        self,
        record: Any,
        status: str,
        output: Any,
        error: dict[str, Any] | None,
        next_retry_at: int | None = None,
    ) -> None:
        """Queued: the step goes on while the recorder writes (see tenancy/recorder.py)."""
        org = self.plan.organization_slug
        if record is not None and getattr(record, "started_at", None):
            metrics.STEP_SECONDS.labels(org, status).observe((now_ms() - record.started_at) / 1000)
        if status == "retrying":
            metrics.STEP_RETRIES.labels(org).inc()
        self.recorder.finish_step(
            record, status=status, output=output, error=error, next_retry_at=next_retry_at
        )
