"""A workflow's integration steps must name an integration of its own organization, of the
step's provider: checked when the spec is saved (a 422), not first when a run fails."""

from __future__ import annotations

from typing import Any

from orbin_flows.integrations.providers import PROVIDERS
from tenancy import integrations as repo
from tenancy.db import Session
from tenancy.errors import InvalidInput


def _integration_steps(steps: Any, where: str) -> list[tuple[str, str, Any]]:
    """(path, provider, integration name) of every integration step, nested ones included."""
    out: list[tuple[str, str, Any]] = []
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        path = f"{where}[{i}]"
        config = step.get("config") if isinstance(step.get("config"), dict) else {}
        kind = step.get("type")
        action = config.get("action")
        if kind == "action" and isinstance(action, str) and "." in action:
            provider = action.split(".", 1)[0]
            if provider in PROVIDERS:
                out.append((f"{path}.config.integration", provider, config.get("integration")))
        elif kind == "condition":
            out += _integration_steps(config.get("then"), f"{path}.config.then")
            out += _integration_steps(config.get("else"), f"{path}.config.else")
        elif kind == "loop":
            out += _integration_steps(config.get("steps"), f"{path}.config.steps")
    return out


def check_references(session: Session, *, organization_id: str, spec: dict[str, Any]) -> None:
    refs = _integration_steps(spec.get("steps"), "steps")
    if not refs:
        return
    known = {
        row.name: row.provider
        for row in repo.read_integrations(session, organization_id=organization_id)
    }
    errors = []
    for path, provider, name in refs:
        if not isinstance(name, str):
            continue  # the action's own config check reports a missing name
        if name not in known:
            errors.append({"path": path, "message": f"no integration named {name!r}"})
        elif known[name] != provider:
            errors.append(
                {
                    "path": path,
                    "message": f"integration {name!r} is a {known[name]} integration, "
                    f"not {provider}",
                }
            )
    if errors:
        raise InvalidInput(
            "invalid workflow: " + "; ".join(f"{e['path']}: {e['message']}" for e in errors),
            details=errors,
        )
