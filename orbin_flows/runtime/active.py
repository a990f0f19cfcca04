"""The runs in progress in this process: their executors, by run id and by flow run id.

The worker (or the process-worker entrypoint) owns one and hands it to the compiled flow's
tasks and to each ``RunExecutor``: a task finds its run's executor here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orbin_flows.runtime.engine import RunExecutor


class ActiveRuns:
    def __init__(self) -> None:
        self._by_run: dict[str, RunExecutor] = {}
        self._by_flow_run: dict[str, RunExecutor] = {}

    def add(self, executor: RunExecutor, flow_run_id: str | None) -> None:
        self._by_run[executor.run.id] = executor
        if flow_run_id:
            self._by_flow_run[flow_run_id] = executor

    def remove(self, run_id: str, flow_run_id: str | None) -> None:
        self._by_run.pop(run_id, None)
        if flow_run_id:
            self._by_flow_run.pop(flow_run_id, None)

    def __getitem__(self, run_id: str) -> RunExecutor:
        return self._by_run[run_id]

    def get(self, run_id: str) -> RunExecutor | None:
        return self._by_run.get(run_id)

    def for_flow_run(self, flow_run_id: str) -> RunExecutor | None:
        return self._by_flow_run.get(flow_run_id)
