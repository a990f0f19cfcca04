"""Structured logs (``ORBIN_LOG_FORMAT=json``): one JSON object per line, with the
organization, run and step ids bound by the engine and the current trace and span ids."""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

_IDS: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("orbin_log_ids", default={})  # noqa: B039 - never mutated


@contextmanager
def bound(**ids: str | None) -> Iterator[None]:
    """Log records made inside carry these ids (``org``, ``runId``, ``stepId``)."""
    token = _IDS.set({**_IDS.get(), **{k: v for k, v in ids.items() if v}})
    try:
        yield
    finally:
        _IDS.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_IDS.get(),
        }
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            doc["traceId"] = format(ctx.trace_id, "032x")
            doc["spanId"] = format(ctx.span_id, "016x")
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def formatter(log_format: str) -> logging.Formatter:
    if log_format.lower() == "json":
        return JsonFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


class SuspensionIsNotAnError(logging.Filter):
    """Prefect's engine logs every flow run that does not end Completed at ERROR, a paused or
    suspended one too ("Finished in state Suspended(...)"). Suspending is how Orbin waits out
    a long delay: that line is INFO (dropped where the logger shows only warnings)."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        if record.levelno >= logging.ERROR and isinstance(msg, str):
            if msg.startswith(("Finished in state Suspended(", "Finished in state Paused(")):
                record.levelno, record.levelname = logging.INFO, "INFO"
                return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


def quiet_suspensions() -> None:
    """Install ``SuspensionIsNotAnError`` on Prefect's flow-run logger (once)."""
    logger = logging.getLogger("prefect.flow_runs")
    if not any(isinstance(f, SuspensionIsNotAnError) for f in logger.filters):
        logger.addFilter(SuspensionIsNotAnError())
