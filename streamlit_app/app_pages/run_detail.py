"""Run: the visual debugger of one run. Its header, a timeline of the step attempts, the steps
with their attempts and retries, and the selected step's input, output and error.

A run still in progress refreshes itself every two seconds until it ends.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import streamlit as st

from streamlit_app import data, shell
from streamlit_app.components.formatting import clock, duration, relative, until
from streamlit_app.components.status import badge_html, status_label
from streamlit_app.components.text import md
from streamlit_app.components.timeline import timeline_figure
from tenancy.clock import now_ms
from tenancy.errors import NotFound
from tenancy.runs import RUN_FINAL

REFRESH_SECONDS = 2
RUN_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
STEP_KEY = "run_detail.step"

org = shell.current_org()
run_id = st.query_params.get("run", "")

st.page_link("app_pages/runs.py", label="← All runs")


def load(run_id: str) -> data.RunDetail | None:
    try:
        return data.run_detail(org.organization_id, run_id)
    except NotFound:
        return None


def steps_of(detail: data.RunDetail) -> OrderedDict[str, list[data.StepAttempt]]:
    """Attempts grouped by step, in plan order; steps not started yet have none."""
    steps: OrderedDict[str, list[data.StepAttempt]] = OrderedDict(
        (p.id, []) for p in detail.planned_steps
    )
    for a in detail.attempts:
        steps.setdefault(a.step_id, []).append(a)
    return steps


def step_status(attempts: list[data.StepAttempt], run_status: str) -> str:
    if attempts:
        return attempts[-1].status
    return "skipped" if run_status in RUN_FINAL else "pending"


def header(detail: data.RunDetail, now: int) -> None:
    run = detail.run
    took = run.duration_ms
    if took is None and run.started_at is not None:
        took = now - run.started_at
    st.markdown(
        f"### Run `{run.id}` &nbsp; {badge_html(run.status)}",
        unsafe_allow_html=True,
    )
    cols = st.columns(4)
    cols[0].metric("Workflow", run.workflow_name, help=f"version {detail.workflow_version}")
    cols[1].metric("Trigger", run.trigger_type)
    started = run.started_at or run.created_at
    cols[2].metric("Started", relative(started, now), help=clock(started, st.context.timezone))
    cols[3].metric("Duration", duration(took) + ("" if run.status in RUN_FINAL else " …"))
    if detail.error:
        st.error(f"**Run failed:** {md(detail.error.get('message', ''))}")


def step_line(
    step_id: str, attempts: list[data.StepAttempt], names: dict[str, str], run_status: str, now: int
) -> str:
    status = step_status(attempts, run_status)
    parts = [f"**{md(names.get(step_id, step_id))}**", status_label(status)]
    if attempts:
        last = attempts[-1]
        parts.append(f"attempt {last.attempt}/{last.max_attempts}")
        if last.duration_ms is not None:
            parts.append(duration(last.duration_ms))
        elif last.started_at is not None:
            parts.append(f"{duration(now - last.started_at)} …")
        if last.status == "retrying" and last.next_retry_at:
            parts.append(f"retry {until(last.next_retry_at, now)}")
    return " · ".join(parts)


def step_detail(
    step_id: str, attempts: list[data.StepAttempt], name: str, run_status: str, now: int
) -> None:
    status = step_status(attempts, run_status)
    st.markdown(f"#### {md(name)} &nbsp; {badge_html(status)}", unsafe_allow_html=True)
    if not attempts:
        st.caption(
            "This step has not started." if status == "pending" else "This step did not run."
        )
        return
    last = attempts[-1]
    st.caption(
        f"{md(step_id)} · {md(last.type)} · attempt {last.attempt} of {last.max_attempts} · "
        f"started {clock(last.started_at, st.context.timezone)}"
    )
    if last.status == "retrying" and last.next_retry_at:
        st.warning(
            f"Retrying {until(last.next_retry_at, now)}: "
            f"attempt {last.attempt + 1} of {last.max_attempts} comes next."
        )
    labels = ["Output", "Input"]
    if last.error:
        labels.insert(0, "Error")
    if len(attempts) > 1:
        labels.append(f"Attempts ({len(attempts)})")
    tabs = dict(zip(labels, st.tabs(labels), strict=True))
    if "Error" in tabs:
        with tabs["Error"]:
            st.error(md(last.error.get("message", "")) if last.error else "")
            if last.error and last.error.get("stack"):
                st.code(last.error["stack"], language="python")
    with tabs["Output"]:
        if last.output is None:
            st.caption("No output.")
        else:
            st.json(last.output)
    with tabs["Input"]:
        if last.input is None:
            st.caption("No input.")
        else:
            st.json(last.input)
    for label, tab in tabs.items():
        if label.startswith("Attempts"):
            with tab:
                for a in attempts:
                    st.markdown(
                        f"{status_label(a.status)} · attempt {a.attempt} · "
                        f"{duration(a.duration_ms)} · {clock(a.started_at, st.context.timezone)}"
                    )
                    if a.error:
                        st.caption(md(a.error.get("message", "")))


def debugger(detail: data.RunDetail) -> None:
    now = now_ms()
    header(detail, now)
    steps = steps_of(detail)
    names = {p.id: p.name for p in detail.planned_steps}
    for a in detail.attempts:
        names.setdefault(a.step_id, a.name)
    start = detail.run.started_at or detail.run.created_at
    if detail.attempts:
        st.plotly_chart(
            timeline_figure(detail.attempts, [names[s] for s in steps], start, now),
            width="stretch",
            config={"displayModeBar": False},
        )
    left, right = st.columns([3, 7], gap="large")
    with left:
        st.markdown("#### Steps")
        if not steps:
            st.caption("This workflow has no steps.")
            return
        options = list(steps)
        if st.session_state.get(STEP_KEY) not in options:
            st.session_state[STEP_KEY] = next(
                (
                    s
                    for s in options
                    if step_status(steps[s], detail.run.status) in ("failed", "retrying", "running")
                ),
                options[-1] if detail.run.status in RUN_FINAL else options[0],
            )
        selected = st.radio(
            "Step",
            options,
            key=STEP_KEY,
            format_func=lambda s: step_line(s, steps[s], names, detail.run.status, now),
            label_visibility="collapsed",
        )
    with right:
        step_detail(selected, steps[selected], names[selected], detail.run.status, now)
    with st.expander("Run input and result"):
        cols = st.columns(2)
        cols[0].markdown("**Trigger data**")
        cols[0].json(detail.trigger_data if detail.trigger_data is not None else {})
        cols[1].markdown("**Result**")
        cols[1].json(detail.result if detail.result is not None else {})


if not run_id:
    st.info("Pick a run on the Runs page.")
    st.stop()

first = load(run_id) if RUN_ID.match(run_id) else None
if first is None:
    st.error(f"Run {md(run_id)} was not found in {md(org.name)}.")
    st.stop()

if first.run.status in RUN_FINAL:
    debugger(first)
else:

    @st.fragment(run_every=REFRESH_SECONDS)
    def live_debugger() -> None:
        shell.still_member(org)
        detail = load(run_id)
        if detail is None:
            st.rerun(scope="app")
        assert detail is not None
        debugger(detail)
        if detail.run.status in RUN_FINAL:
            st.rerun(scope="app")  # stops the refresh: the page shows the final state

    live_debugger()
