"""ORBIN_LOG_FORMAT=json: one JSON object per line, with the ids the engine binds."""

from __future__ import annotations

import json
import logging
import uuid

from telemetry.logs import JsonFormatter, bound, formatter


def _line(record_msg: str, **ids: str) -> dict:
    record = logging.LogRecord("orbin.worker", logging.WARNING, __file__, 1, record_msg, (), None)
    with bound(**ids):
        return json.loads(JsonFormatter().format(record))


def test_json_lines_carry_org_run_and_step_ids() -> None:
    doc = _line("step failed", org="acme", runId="r1", stepId="fetch")
    assert doc["message"] == "step failed" and doc["level"] == "WARNING"
    assert (doc["org"], doc["runId"], doc["stepId"]) == ("acme", "r1", "fetch")
    assert "traceId" not in doc  # no span is current
    outside = _line("idle")
    assert "runId" not in outside


def test_text_remains_the_default() -> None:
    assert not isinstance(formatter("text"), JsonFormatter)
    assert isinstance(formatter("JSON"), JsonFormatter)


def test_prefects_end_of_a_suspended_flow_run_is_not_an_error() -> None:
    """Prefect's engine logs ``Finished in state ...`` at ERROR for any end but Completed
    (flow_engine.py, through the ``prefect.flow_runs`` logger); a suspension is INFO."""
    from prefect.logging.loggers import flow_run_logger
    from prefect.states import Failed, Suspended

    from telemetry.logs import quiet_suspensions

    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    base = logging.getLogger("prefect.flow_runs")
    handler, level = Keep(), base.level
    base.addHandler(handler)
    try:
        quiet_suspensions()
        quiet_suspensions()  # once is enough; twice does no harm
        run_logger = flow_run_logger(flow_run_id=uuid.uuid4())
        base.setLevel(logging.INFO)
        run_logger.error(f"Finished in state {Suspended(message='waits')}")
        run_logger.error(f"Finished in state {Failed(message='boom')}")
        base.setLevel(logging.WARNING)  # where only warnings are shown, it is not shown
        run_logger.error(f"Finished in state {Suspended(message='again')}")
    finally:
        base.removeHandler(handler)
        base.setLevel(level)
    assert [(r.levelname, r.getMessage()[:27]) for r in seen] == [
        ("INFO", "Finished in state Suspended"),
        ("ERROR", "Finished in state Failed('b"),
    ]
