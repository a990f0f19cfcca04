"""Two runs of one workflow side by side, per step: status, duration, and the output's diff."""

from __future__ import annotations

import difflib
import json
from typing import Any

import streamlit as st

from streamlit_app.components.formatting import duration
from streamlit_app.components.status import status_label
from streamlit_app.data import RunDetail, StepAttempt


def _last(attempts: list[StepAttempt], step_id: str) -> StepAttempt | None:
    found = [a for a in attempts if a.step_id == step_id]
    return found[-1] if found else None


def _text(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, default=str).splitlines()


def step_rows(this: RunDetail, other: RunDetail) -> list[dict[str, str]]:
    order = [p.id for p in this.planned_steps]
    for a in [*this.attempts, *other.attempts]:
        if a.step_id not in order:
            order.append(a.step_id)
    rows = []
    for step_id in order:
        a, b = _last(this.attempts, step_id), _last(other.attempts, step_id)
        same = (a.output if a else None) == (b.output if b else None)
        rows.append(
            {
                "Step": step_id,
                "This run": status_label(a.status) if a else "—",
                "Duration": duration(a.duration_ms) if a else "—",
                "Previous run": status_label(b.status) if b else "—",
                "Previous duration": duration(b.duration_ms) if b else "—",
                "Output": "same" if same else "changed",
            }
        )
    return rows


def compare_runs(this: RunDetail, other: RunDetail) -> None:
    st.caption(f"Previous run `{other.run.id}` · {status_label(other.run.status)}")
    st.table(step_rows(this, other))
    for row in step_rows(this, other):
        if row["Output"] != "changed":
            continue
        a, b = _last(this.attempts, row["Step"]), _last(other.attempts, row["Step"])
        diff = difflib.unified_diff(
            _text(b.output if b else None),
            _text(a.output if a else None),
            "previous",
            "this run",
            lineterm="",
        )
        st.markdown(f"**{row['Step']}** output")
        st.code("\n".join(diff), language="diff")
