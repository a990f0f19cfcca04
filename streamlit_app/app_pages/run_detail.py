"""Run: the visual debugger of one run (``/run?id=<run>``). Its header with replay, resume and
cancel, a timeline of the step attempts, the steps with their attempts and retries, the
selected step's input, output and error (the stack full screen), and a comparison with the
previous run of the same workflow; "Diagnose" asks the AI why a failed run failed, when a model
is configured.

A run still in progress changes on screen as its steps do, pushed by the change feed.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import streamlit as st

from streamlit_app import data, shell
from streamlit_app.components.formatting import clock, duration, relative, until
from streamlit_app.components.live import watch_changes
from streamlit_app.components.run_compare import compare_runs
from streamlit_app.components.status import badge_html, status_label
from streamlit_app.components.text import md
from streamlit_app.components.timeline import timeline_figure
from streamlit_app.services import ai as ai_service
from streamlit_app.services import runs as run_service
from tenancy.clock import now_ms
from tenancy.errors import NotFound
from tenancy.runs import RUN_FINAL

RUN_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
STEP_KEY = "run_detail.step"
DIAGNOSIS_KEY = "run_detail.diagnosis"
OUTPUT_KEY = "run_detail.output"
FAILED = ("failed", "timed_out", "canceled")

org = shell.current_org()
run_id = st.query_params.get("id") or st.query_params.get("run", "")

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
    if run.status == "suspended":
        st.info(
            f"Suspended by a long delay: no worker holds it; resumes {until(run.resume_at, now)}"
        )
    if detail.error:
        st.error(f"**Run failed:** {md(detail.error.get('message', ''))}")
        if st.button("Show the full error", key="run_detail.full"):
            full_error(detail.error)


@st.dialog("Error", width="large")
def full_error(error: dict) -> None:
    """The whole message, the failed step and, for a python step, its own frames (other steps'
    errors carry no stack: the platform's traceback stays in the worker log)."""
    st.markdown(f"**{md(error.get('message', ''))}**")
    if error.get("stepId"):
        st.caption(f"in step {md(error['stepId'])}")
    if error.get("stack"):
        st.code(error["stack"], language="python")


def actions(detail: data.RunDetail) -> None:
    """Replay, resume from the failed step, cancel: for members and above."""
    run = detail.run
    st.code(run.id, language=None)  # with Streamlit's copy button
    if not shell.may("member"):
        return
    cols = st.columns([1, 1, 1, 5])
    outcome = None
    if cols[0].button("Replay", key="run_detail.replay"):
        outcome = run_service.replay(shell.actor(), run.id)
    if run.status in FAILED and cols[1].button("Resume from failed step", key="run_detail.resume"):
        outcome = run_service.resume(shell.actor(), run.id)
    if run.status not in RUN_FINAL and cols[2].button("Cancel", key="run_detail.cancel"):
        outcome = run_service.cancel(shell.actor(), run.id)
    if outcome is not None and shell.report(outcome):
        if isinstance(outcome.value, str) and outcome.value != run.id:
            st.switch_page("app_pages/run_detail.py", query_params={"id": outcome.value})
        st.rerun(scope="app")


def diagnosis(detail: data.RunDetail) -> None:
    """The model's reading of a failed run: summary, likely cause, fix, and a spec patch."""
    if detail.run.status not in FAILED or not ai_service.available(shell.actor()):
        return
    found = st.session_state.get(DIAGNOSIS_KEY)
    if not (found and found[0] == detail.run.id):
        if st.button("Diagnose with AI", key="run_detail.diagnose"):
            with st.spinner("Asking the model..."):
                got = ai_service.diagnose(shell.actor(), detail.run.id)
            if shell.report(got):
                st.session_state[DIAGNOSIS_KEY] = (detail.run.id, got.value)
                st.rerun()
        return
    d = found[1]
    with st.container(border=True, key="run_detail.diagnosis_box"):
        st.markdown(f"**AI diagnosis:** {md(d.get('summary', ''))}")
        st.markdown(f"**Likely cause:** {md(d.get('likelyCause', ''))}")
        st.markdown(f"**Suggested fix:** {md(d.get('suggestedFix', ''))}")
        if d.get("specPatch"):
            st.caption("A change to the workflow's spec (JSON Patch) that would fix it:")
            st.json(d["specPatch"])
        st.caption("A proposal from the model: check it before changing the workflow.")


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
        elif (stored := run_service.stored_output(last.output)) is not None:
            stored_output(last, stored)
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


def stored_output(last: data.StepAttempt, stored: run_service.OutputRef) -> None:
    """An output stored out of line: its size and storage, the value fetched on demand."""
    st.caption(f"Stored out of line: {stored.bytes:,} bytes in `{md(stored.storage)}`.")
    if not st.button("Load output", key=f"{OUTPUT_KEY}.{last.id}"):
        return
    loaded = run_service.step_output(org.organization_id, run_id, last.id)
    if not loaded.ok:
        st.error(md(loaded.message))
        return
    st.download_button(
        "Download JSON",
        loaded.value,
        file_name=f"{last.step_id}-output.json",
        mime="application/json",
    )
    st.json(loaded.value.decode())


def debugger(detail: data.RunDetail) -> None:
    now = now_ms()
    header(detail, now)
    actions(detail)
    diagnosis(detail)
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
    with st.expander("Compare with the previous run"):
        previous = run_service.previous_run_id(
            org.organization_id, detail.workflow_id, detail.run.id
        )
        other = load(previous) if previous else None
        if other is None:
            st.caption("This is the workflow's first run: nothing to compare with.")
        else:
            compare_runs(detail, other)


if not run_id:
    st.info("Pick a run on the Runs page.")
    st.stop()

first = load(run_id) if RUN_ID.match(run_id) else None
if first is None:
    st.error(f"Run {md(run_id)} was not found in {md(org.name)}.")
    st.stop()


@st.fragment
def live_debugger() -> None:
    """Listens while the run is in progress; each change of it re-reads the run."""
    detail = load(run_id)
    if detail is None:
        st.rerun(scope="app")
    assert detail is not None
    if detail.run.status not in RUN_FINAL:
        watch_changes(org.organization_id, ["run", "step"], key="run_detail.live", run_id=run_id)
        shell.still_member(org)
    debugger(detail)


if first.run.status in RUN_FINAL:
    debugger(first)  # nothing will change: no listening
else:
    live_debugger()
