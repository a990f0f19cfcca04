"""The workflows list and the editor: validate, save (a new version), status changes,
duplicate, test runs, version history with diff and rollback."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from orbin_flows import workflows as wf_cases
from orbin_flows.spec import load_yaml, spec_json_schema, validate_spec
from streamlit_app.services.base import Actor, Outcome, act, read
from tenancy import dashboard_queries as q
from tenancy import org_queries
from tenancy import workflows as wf_repo
from tenancy.errors import InvalidInput, NotFound

WorkflowListRow = q.WorkflowListRow

TEMPLATE: dict[str, Any] = {
    "name": "My workflow",
    "slug": "my-workflow",
    "trigger": {"type": "event", "config": {"eventType": "user.created"}},
    "steps": [
        {
            "id": "greet",
            "name": "Greet",
            "type": "action",
            "config": {
                "action": "transform",
                "output": {"message": "Hello {{ trigger.data.name }}!"},
            },
            "retryPolicy": {"maxAttempts": 3, "backoffCoefficient": 2, "initialInterval": 1000},
            "timeoutSeconds": 30,
        }
    ],
}


@dataclass(frozen=True)
class Validation:
    spec: dict[str, Any] | None
    errors: list[dict[str, str]]


@dataclass(frozen=True)
class WorkflowSpecView:
    id: str
    name: str
    status: str
    version: int
    spec: dict[str, Any]


@dataclass(frozen=True)
class VersionRow:
    version: int
    created_at: int
    created_by: str | None
    status: str


def list_workflows(organization_id: str, *, now: int, **filters: Any) -> list[WorkflowListRow]:
    return read(
        lambda s: q.read_workflow_list(s, organization_id=organization_id, now=now, **filters)
    )


def to_text(spec: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(spec, indent=2)
    return yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)


def parse(text: str, fmt: str) -> Validation:
    """The spec in the editor, checked as the API checks it: every error with its path."""
    try:
        data = json.loads(text) if fmt == "json" else load_yaml(text)
    except (ValueError, yaml.YAMLError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f"line {where.line + 1}" if where is not None else ""
        if isinstance(exc, json.JSONDecodeError):
            line = f"line {exc.lineno}"
        return Validation(None, [{"path": line, "message": str(exc).splitlines()[0]}])
    try:
        validate_spec(data)
    except InvalidInput as exc:
        return Validation(None, list(exc.details))
    return Validation(data, [])


def load(organization_id: str, workflow_id: str) -> WorkflowSpecView | None:
    def get(session):  # type: ignore[no-untyped-def]
        try:
            wf = wf_repo.read_workflow(
                session, organization_id=organization_id, workflow_id=workflow_id
            )
        except NotFound:
            return None
        return WorkflowSpecView(
            wf.id, wf.name, wf.status, wf.version, wf_cases.current_spec(session, wf)
        )

    return read(get)


def versions(organization_id: str, workflow_id: str) -> list[VersionRow]:
    def get(session):  # type: ignore[no-untyped-def]
        rows = wf_repo.read_workflow_versions(
            session, organization_id=organization_id, workflow_id=workflow_id
        )
        names = org_queries.read_user_names(
            session, user_ids={r.created_by for r in rows if r.created_by}
        )
        return [
            VersionRow(
                r.version, r.created_at, names.get(r.created_by or ""), r.spec.get("status", "")
            )
            for r in rows
        ]

    return read(get)


def save(actor: Actor, workflow_id: str | None, spec: dict[str, Any]) -> Outcome:
    if workflow_id is None:
        return act(actor, "Workflow created.", lambda s, p: wf_cases.create_workflow(s, p, spec).id)
    return act(
        actor,
        "Saved as a new version.",
        lambda s, p: wf_cases.update_workflow(s, p, workflow_id, spec).id,
    )


def set_status(actor: Actor, workflow_id: str, status: str) -> Outcome:
    done = {"active": "Activated.", "paused": "Paused.", "archived": "Archived."}[status]
    return act(actor, done, lambda s, p: wf_cases.set_status(s, p, workflow_id, status).id)


def duplicate(actor: Actor, workflow_id: str) -> Outcome:
    def copy(session, principal):  # type: ignore[no-untyped-def]
        wf = wf_repo.read_workflow(
            session, organization_id=principal.organization_id, workflow_id=workflow_id
        )
        spec = dict(wf_cases.current_spec(session, wf))
        for n in range(1, 100):
            slug = f"{wf.slug[:90]}-copy{'' if n == 1 else n}"
            try:
                wf_repo.read_workflow_by_slug(
                    session, organization_id=principal.organization_id, slug=slug
                )
            except NotFound:
                break
        spec.update(name=f"{wf.name} (copy)"[:200], slug=slug, status="draft")
        return wf_cases.create_workflow(session, principal, spec).id

    return act(actor, "Duplicated as a draft.", copy)


def diff(actor: Actor, workflow_id: str, a: int, b: int) -> Outcome:
    return act(actor, "", lambda s, p: wf_cases.diff_versions(s, p, workflow_id, a, b))


def rollback(actor: Actor, workflow_id: str, version: int) -> Outcome:
    return act(
        actor,
        f"Rolled back to version {version} (saved as a new version).",
        lambda s, p: wf_cases.rollback(s, p, workflow_id, version).id,
    )


def test_run(actor: Actor, workflow_id: str, payload: Any) -> Outcome:
    return act(
        actor,
        "Test run started.",
        lambda s, p: wf_cases.trigger_manually(s, p, workflow_id, payload).id,
    )


def schema() -> dict[str, Any]:
    return spec_json_schema()
