"""AI assistance: workflows from plain language, step suggestions, failure diagnosis and
optimization hints. The model's answers are proposals, validated here; nothing is saved."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from orbin_flows.ai.ask import Invalid, ask, limit_per_minute
from orbin_flows.ai.patch import PatchError, apply_patch
from orbin_flows.ai.redact import SECRET_VALUE, Redactor
from orbin_flows.ai.settings import AISettings, get_ai_settings
from orbin_flows.spec import validate_spec
from tenancy import ai_usage, run_stats
from tenancy import runs as runs_repo
from tenancy import steps as steps_repo
from tenancy import workflows as wf_repo
from tenancy.config import get_settings
from tenancy.db import Session, session_scope
from tenancy.errors import Conflict, InvalidInput
from tenancy.known_secrets import read_known_secrets
from tenancy.principal import Principal

FAILED = ("failed", "timed_out", "canceled")


def _spec_dict(data: Any) -> dict[str, Any]:
    return validate_spec(data).model_dump(mode="json", by_alias=True, exclude_none=True)


def _prepare(principal: Principal) -> AISettings:
    principal.require("ai:use")
    return get_ai_settings()


def _redactor(
    session: Session, principal: Principal, settings: AISettings, workflow_ids: list[str]
) -> Redactor:
    known = read_known_secrets(
        session, organization_id=principal.organization_id, workflow_ids=workflow_ids
    )
    for secret in (settings.api_key, get_settings().secret_key):
        if secret is not None:
            known.append(secret.get_secret_value())
    return Redactor(known, settings.max_value_chars)


def _dump(title: str, value: Any) -> str:
    return f"{title}:\n{json.dumps(value, indent=1, default=str)}"


def _check_str(obj: dict[str, Any], key: str, errors: list[dict[str, str]], path: str = "") -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        errors.append({"path": f"{path}{key}", "message": "a non-empty string is required"})
        return ""
    return value.strip()


def _check_patch(
    spec: dict[str, Any], patch: Any, path: str, errors: list[dict[str, str]]
) -> list[Any] | None:
    """A JSON Patch that applies to the spec and leaves it valid, or None (errors added)."""
    if patch is None:
        return None
    try:
        patched = apply_patch(spec, patch)
    except PatchError as exc:
        errors.append({"path": path, "message": f"the JSON Patch does not apply: {exc}"})
        return None
    try:
        validate_spec(patched)
    except InvalidInput as exc:
        errors.extend(
            {"path": f"{path} -> spec.{d.get('path', '')}", "message": d.get("message", "")}
            for d in exc.details
        )
        return None
    return list(patch)


# --- generate -----------------------------------------------------------------------------


async def generate_workflow(
    principal: Principal, *, prompt: str, event_types: list[str] | None = None
) -> dict[str, Any]:
    settings = _prepare(principal)
    prompt = prompt.strip()
    if not prompt:
        raise InvalidInput("the prompt is empty", details=[{"path": "prompt"}])
    if len(prompt) > settings.max_prompt_chars:
        raise InvalidInput(
            f"the prompt is longer than {settings.max_prompt_chars} characters",
            details=[{"path": "prompt"}],
        )

    def _load() -> Redactor:
        with session_scope() as session:
            return _redactor(session, principal, settings, [])

    redactor = await asyncio.to_thread(_load)
    context = f"Write a workflow for this request:\n{redactor.text(prompt, limit=10**6)}"
    if event_types:
        context += "\n\nEvent types this organization sends: " + ", ".join(
            redactor.text(t, limit=200) for t in event_types[:50]
        )

    def validate(obj: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(obj.get("spec"), dict):
            raise Invalid([{"path": "spec", "message": "a workflow spec object is required"}])
        raw = dict(obj["spec"])
        warnings = []
        if raw.get("status") not in (None, "draft"):
            warnings.append(f"the model asked for status {raw['status']!r}; it stays a draft")
        raw["status"] = "draft"
        try:
            spec = _spec_dict(raw)
        except InvalidInput as exc:
            raise Invalid(
                [{**d, "path": f"spec.{d.get('path', '')}"} for d in exc.details]
            ) from exc
        if SECRET_VALUE.search(json.dumps(spec)):
            warnings.append("the spec holds a value that looks like a secret: move it out")
        trigger = spec.get("trigger", {})
        wanted = (trigger.get("config") or {}).get("eventType")
        if event_types and trigger.get("type") == "event" and wanted not in event_types:
            warnings.append(f"the trigger's event type {wanted!r} is not among the given ones")
        explanation = obj.get("explanation")
        return {
            "spec": spec,
            "explanation": explanation if isinstance(explanation, str) else "",
            "warnings": warnings,
        }

    return await ask(principal, settings, feature="generate", context=context, validate=validate)


# --- suggest ------------------------------------------------------------------------------


@dataclass
class _WorkflowContext:
    spec: dict[str, Any]
    stats: dict[str, Any] | None
    redactor: Redactor


def _workflow_context(
    principal: Principal, settings: AISettings, workflow_id: str, with_stats: bool
) -> _WorkflowContext:
    with session_scope() as session:
        org = principal.organization_id
        wf = wf_repo.read_workflow(session, organization_id=org, workflow_id=workflow_id)
        spec = wf_repo.read_workflow_version(
            session, organization_id=org, workflow_id=wf.id, version=wf.version
        ).spec
        stats = None
        if with_stats:
            stats = run_stats.read_step_stats(
                session, organization_id=org, workflow_id=wf.id, last_runs=settings.history_runs
            )
        return _WorkflowContext(spec, stats, _redactor(session, principal, settings, [wf.id]))


def _insert_at(spec: dict[str, Any], after: str | None, new: list[Any]) -> dict[str, Any]:
    steps = list(spec.get("steps", []))
    at = len(steps)
    if after is not None:
        at = next(i for i, s in enumerate(steps) if s.get("id") == after) + 1
    return {**spec, "steps": steps[:at] + new + steps[at:]}


async def suggest_steps(
    principal: Principal, *, workflow_id: str, after: str | None = None
) -> dict[str, Any]:
    settings = _prepare(principal)
    principal.require("workflows:read")
    ctx = await asyncio.to_thread(_workflow_context, principal, settings, workflow_id, False)
    if after is not None and after not in [s.get("id") for s in ctx.spec.get("steps", [])]:
        raise InvalidInput(
            f"the workflow has no top-level step {after!r}", details=[{"path": "after"}]
        )
    where = f"after step {after!r}" if after else "at the end"
    context = (
        f"Propose 1 to 3 next steps to add {where} of this workflow. Step ids must not clash "
        "with existing ones.\n" + _dump("Workflow spec", ctx.redactor.data(ctx.spec))
    )

    def validate(obj: dict[str, Any]) -> dict[str, Any]:
        items = obj.get("steps")
        if not isinstance(items, list) or not items:
            raise Invalid([{"path": "steps", "message": "a non-empty list is required"}])
        errors: list[dict[str, str]] = []
        out = []
        for i, item in enumerate(items[:10]):
            where = f"steps[{i}]"
            if not isinstance(item, dict) or not isinstance(item.get("step"), dict):
                errors.append({"path": f"{where}.step", "message": "a step object is required"})
                continue
            reason = _check_str(item, "reason", errors, f"{where}.")
            try:
                validate_spec(_insert_at(ctx.spec, after, [item["step"]]))
            except InvalidInput as exc:
                errors.extend(
                    {"path": f"{where}.step", "message": f"{d.get('path')}: {d.get('message')}"}
                    for d in exc.details
                )
                continue
            out.append({"step": item["step"], "reason": reason})
        if errors:
            raise Invalid(errors)
        return {"steps": out}

    return await ask(principal, settings, feature="suggest", context=context, validate=validate)


# --- diagnose -----------------------------------------------------------------------------


def _run_context(
    principal: Principal, settings: AISettings, run_id: str
) -> tuple[dict, str, Redactor]:
    org = principal.organization_id
    with session_scope() as session:
        run = runs_repo.read_run(session, organization_id=org, run_id=run_id)
        if run.status not in FAILED:
            raise Conflict(f"the run is {run.status}; only a failed run can be diagnosed")
        spec = wf_repo.read_workflow_version(
            session, organization_id=org, workflow_id=run.workflow_id, version=run.workflow_version
        ).spec
        versions = wf_repo.read_workflow_versions(
            session, organization_id=org, workflow_id=run.workflow_id
        )
        steps = steps_repo.read_step_executions(session, organization_id=org, run_id=run.id)
        red = _redactor(session, principal, settings, [run.workflow_id])
        history = [
            {"version": v.version, "createdAt": v.created_at, "hash": v.code_hash[:12]}
            for v in versions[-10:]
        ]
        facts = {
            "run": {
                "status": run.status,
                "error": red.data(run.error),
                "trigger": red.bounded(run.trigger_data),
                "workflowVersion": run.workflow_version,
                "durationMs": run.duration_ms,
            },
            "steps": [
                {
                    "stepId": s.step_id,
                    "name": s.step_name,
                    "type": s.step_type,
                    "status": s.status,
                    "attempt": s.attempt,
                    "maxAttempts": s.max_attempts,
                    "durationMs": s.duration_ms,
                    "error": red.data(s.error),
                    "input": red.bounded(s.input),
                    "output": red.bounded(s.output),
                }
                for s in steps[-50:]
            ],
            "versionHistory": history,
        }
        text = (
            "Diagnose why this workflow run failed.\n"
            + _dump("Workflow spec (the version the run used)", red.data(spec))
            + "\n"
            + _dump("Run and its step executions", facts)
        )
        return spec, text, red


async def diagnose_run(principal: Principal, *, run_id: str) -> dict[str, Any]:
    settings = _prepare(principal)
    principal.require("runs:read")
    spec, context, _ = await asyncio.to_thread(_run_context, principal, settings, run_id)

    def validate(obj: dict[str, Any]) -> dict[str, Any]:
        errors: list[dict[str, str]] = []
        out: dict[str, Any] = {
            k: _check_str(obj, k, errors) for k in ("summary", "likelyCause", "suggestedFix")
        }
        patch = _check_patch(spec, obj.get("specPatch"), "specPatch", errors)
        if errors:
            raise Invalid(errors)
        if patch is not None:
            out["specPatch"] = patch
        return out

    return await ask(principal, settings, feature="diagnose", context=context, validate=validate)


# --- optimize -----------------------------------------------------------------------------


async def optimize_workflow(principal: Principal, *, workflow_id: str) -> dict[str, Any]:
    settings = _prepare(principal)
    principal.require("workflows:read")
    ctx = await asyncio.to_thread(_workflow_context, principal, settings, workflow_id, True)
    context = (
        "Suggest optimizations of this workflow from its last runs: retry policies, timeouts, "
        "loop concurrency, steps that could run in parallel. Say so when none are needed.\n"
        + _dump("Workflow spec", ctx.redactor.data(ctx.spec))
        + "\n"
        + _dump("Last runs per status and per step", ctx.stats)
    )

    def validate(obj: dict[str, Any]) -> dict[str, Any]:
        items = obj.get("suggestions")
        if not isinstance(items, list):
            raise Invalid([{"path": "suggestions", "message": "a list is required"}])
        errors: list[dict[str, str]] = []
        out = []
        for i, item in enumerate(items[:20]):
            where = f"suggestions[{i}]."
            if not isinstance(item, dict):
                errors.append({"path": where[:-1], "message": "an object is required"})
                continue
            s = {k: _check_str(item, k, errors, where) for k in ("title", "detail")}
            patch = _check_patch(ctx.spec, item.get("specPatch"), f"{where}specPatch", errors)
            if patch is not None:
                s["specPatch"] = patch
            out.append(s)
        if errors:
            raise Invalid(errors)
        return {
            "suggestions": out,
            "basedOnRuns": sum(r["count"] for r in (ctx.stats or {}).get("runs", {}).values()),
        }

    return await ask(principal, settings, feature="optimize", context=context, validate=validate)


# --- status and usage ---------------------------------------------------------------------


def ai_status(principal: Principal) -> dict[str, Any]:
    settings = get_ai_settings()
    out: dict[str, Any] = {
        "enabled": settings.configured,
        "allowed": principal.can("ai:use"),
        "model": settings.model if settings.configured else None,
        "requestsPerMinute": limit_per_minute(principal, settings),
    }
    if not settings.configured:
        out["hint"] = (
            "set OPENAI_API_KEY (and OPENAI_BASE_URL, ORBIN_AI_MODEL for another server) "
            "and restart the API"
        )
    return out


def read_usage(session: Session, principal: Principal, start: int, end: int) -> dict[str, Any]:
    principal.require("ai:use")
    if end <= start:
        raise InvalidInput("end must be after start", details=[{"path": "end"}])
    rows = ai_usage.read_ai_usage(
        session, organization_id=principal.organization_id, start=start, end=end
    )
    totals = {
        k: sum(r[k] for r in rows)
        for k in ("calls", "refused", "modelRequests", "promptTokens", "completionTokens")
    }
    totals["totalTokens"] = totals["promptTokens"] + totals["completionTokens"]
    return {"start": start, "end": end, "byFeature": rows, "totals": totals}
