"""Editor (``/editor?id=<workflow>``, or a new workflow without ``id``): the spec in YAML or
JSON in a code editor whose JavaScript ships with the package (Ace, no CDN), validated as you
type with the path of every error, the steps drawn as a graph, then save (a new version),
activate, a test run with a sample payload whose result shows here, and the version history
with diffs and rollback."""

from __future__ import annotations

import json

import streamlit as st
from code_editor import code_editor

from streamlit_app import data, shell
from streamlit_app.components.formatting import clock, duration
from streamlit_app.components.live import watch_changes
from streamlit_app.components.status import badge_html
from streamlit_app.components.step_graph import step_graph_html
from streamlit_app.components.table import table_html
from streamlit_app.components.text import md
from streamlit_app.services import ai as ai_service
from streamlit_app.services import workflows as service
from tenancy.errors import NotFound
from tenancy.runs import RUN_FINAL

org = shell.current_org()
workflow_id = st.query_params.get("id") or None
view = service.load(org.organization_id, workflow_id) if workflow_id else None
if workflow_id and view is None:
    st.title("Workflow editor")
    st.error(f"Workflow {md(workflow_id)} was not found in {md(org.name)}.")
    st.stop()

st.title(f"Workflow: {view.name}" if view else "New workflow")
if view:
    st.markdown(f"{badge_html(view.status)} &nbsp; version {view.version}", unsafe_allow_html=True)

can_edit = shell.may("member")
actor = shell.actor()
DRAFT_KEY = "editor.ai_draft"
draft = None
if view is None and can_edit and ai_service.available(actor):
    with st.expander("Generate with AI", expanded=DRAFT_KEY not in st.session_state):
        prompt = st.text_area(
            "Describe the workflow in plain words",
            placeholder="When a user signs up, post a welcome message to Slack",
            key="editor.ai_prompt",
        )
        if st.button("Generate", key="editor.ai_generate"):
            with st.spinner("Asking the model..."):
                got = ai_service.generate(actor, prompt)
            if shell.report(got):
                st.session_state[DRAFT_KEY] = got.value
                st.session_state["editor.ai_drafts"] = (
                    st.session_state.get("editor.ai_drafts", 0) + 1
                )
                st.rerun()
    if draft := st.session_state.get(DRAFT_KEY):
        st.info("Drafted by AI, not saved: " + md(draft.get("explanation") or "review it below."))
        for w in draft.get("warnings") or []:
            st.warning(md(w))

fmt = st.radio("Format", ["yaml", "json"], horizontal=True, key="editor.format")
base = view.spec if view else (draft["spec"] if draft else service.TEMPLATE)
drafts = st.session_state.get("editor.ai_drafts", 0) if draft else 0
loaded_key = f"{workflow_id}:{view.version if view else 0}:{fmt}:{drafts}"
if st.session_state.get("editor.loaded") != loaded_key:
    st.session_state["editor.loaded"] = loaded_key
    st.session_state["editor.initial"] = service.to_text(base, fmt)
    st.session_state["editor.text"] = st.session_state["editor.initial"]

left, right = st.columns([3, 2], gap="large")
with left:
    result = code_editor(
        st.session_state["editor.initial"],
        lang=fmt,
        height=[18, 30],
        response_mode="debounce",
        props={"theme": "chrome"},  # the package's own themes import a web font from a CDN
        options={"behavioursEnabled": False, "tabSize": 2, "useSoftTabs": True},
        key=f"editor.code.{loaded_key}",
    )
    if result and result.get("id") and result.get("text") is not None:
        st.session_state["editor.text"] = result["text"]
    text = st.session_state["editor.text"]
    checked = service.parse(text, fmt)
    if checked.errors:
        st.error(f"{len(checked.errors)} problem(s) in the spec")
        for e in checked.errors:
            st.markdown(f"- `{md(e.get('path') or '(top)')}`: {md(e.get('message', ''))}")
    else:
        st.success("The spec is valid.")

with right:
    st.markdown("#### Steps")
    shown = checked.spec or base
    st.html(step_graph_html(shown))
    trig = shown.get("trigger") or {}
    limit = shown.get("timeoutSeconds")
    st.caption(
        f"Trigger: **{md(trig.get('type', 'manual'))}** · run timeout: "
        + (f"{md(limit)} s" if limit else "none")
    )

cols = st.columns([1, 1, 4])
if can_edit and cols[0].button(
    "Save", type="primary", disabled=checked.spec is None, key="editor.save"
):
    outcome = service.save(actor, workflow_id, checked.spec or {})
    if shell.report(outcome):
        st.session_state.pop("editor.loaded", None)
        st.session_state.pop(DRAFT_KEY, None)
        st.switch_page("app_pages/editor.py", query_params={"id": outcome.value})
if (
    can_edit
    and view
    and view.status != "active"
    and cols[1].button("Activate", key="editor.activate")
):
    shell.report(service.set_status(actor, view.id, "active")) and st.rerun()
if not can_edit:
    st.caption("Your role may view workflows, not change them.")

if view is None:
    st.stop()

st.markdown("#### Test run")
sample = st.text_area(
    "Sample payload (JSON: becomes trigger.data)", '{"name": "Ada"}', key="editor.payload"
)
if can_edit and st.button("Run a test", key="editor.test"):
    try:
        payload = json.loads(sample or "{}")
    except ValueError as exc:
        st.error(f"The payload is not JSON: {md(exc)}")
    else:
        outcome = service.test_run(actor, view.id, payload)
        if shell.report(outcome):
            st.session_state["editor.test_run"] = outcome.value


@st.fragment
def test_result(run_id: str) -> None:
    try:
        detail = data.run_detail(org.organization_id, run_id)
    except NotFound:
        return
    if detail.run.status not in RUN_FINAL:
        watch_changes(org.organization_id, ["run"], key="editor.live", run_id=run_id)
    st.markdown(
        f'Run <a href="/run?id={run_id}" target="_self"><code>{run_id}</code></a> &nbsp; '
        f"{badge_html(detail.run.status)} &nbsp; {duration(detail.run.duration_ms)}",
        unsafe_allow_html=True,
    )
    if detail.error:
        st.error(md(detail.error.get("message", "")))
    if detail.result is not None:
        st.json(detail.result)


if test_run := st.session_state.get("editor.test_run"):
    test_result(test_run)

st.markdown("#### Version history")
history = service.versions(org.organization_id, view.id)
st.html(
    table_html(
        [
            {
                "Version": v.version,
                "Status": v.status,
                "By": v.created_by or "API",
                "Saved": clock(v.created_at, st.context.timezone),
            }
            for v in history
        ]
    )
)
if len(history) > 1:
    numbers = [v.version for v in history]
    a, b, c = st.columns(3)
    old = a.selectbox("From", numbers, index=1, key="editor.diff_from")
    new = b.selectbox("To", numbers, index=0, key="editor.diff_to")
    diff = service.diff(actor, view.id, old, new)
    if diff.ok:
        st.code(diff.value["diff"] or "(no difference)", language="diff")
    if can_edit and c.button(f"Roll back to version {old}", key="editor.rollback"):
        shell.report(service.rollback(actor, view.id, old)) and st.rerun()
