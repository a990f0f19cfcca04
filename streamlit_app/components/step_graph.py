"""A workflow's steps as a small flow chart in HTML: trigger, then each step in order, with a
condition's branches and a loop's body nested under it."""

from __future__ import annotations

import html
from typing import Any

KIND_ICONS = {"action": "▶", "condition": "◇", "loop": "⟲", "delay": "⏱"}


def _box(step: dict[str, Any]) -> str:
    kind = str(step.get("type", "action"))
    cfg = step.get("config") or {}
    detail = cfg.get("action") if kind == "action" else kind
    retry = step.get("retryPolicy") or {}
    extra = []
    if retry.get("maxAttempts"):
        extra.append(f"{retry['maxAttempts']} attempts")
    if step.get("timeoutSeconds"):
        extra.append(f"timeout {step['timeoutSeconds']} s")
    inner = ""
    if kind == "condition":
        inner = (
            '<div class="orbin-branches">'
            f"<div><em>then</em>{_steps(cfg.get('then') or [])}</div>"
            f"<div><em>else</em>{_steps(cfg.get('else') or [])}</div></div>"
        )
    elif kind == "loop":
        body = _steps(cfg.get("steps") or [])
        inner = f'<div class="orbin-branches"><div><em>each item</em>{body}</div></div>'
    step_id = html.escape(str(step.get("id", "")), quote=True)
    name = html.escape(str(step.get("name") or step.get("id")))
    note = html.escape(str(detail or "")) + (" · " + ", ".join(extra) if extra else "")
    return (
        f'<div class="orbin-step" data-step-id="{step_id}">'
        f"<b>{KIND_ICONS.get(kind, '•')} {name}</b><small>{note}</small>{inner}</div>"
    )


def _steps(steps: list[Any]) -> str:
    boxes = [_box(s) for s in steps if isinstance(s, dict)]
    if not boxes:
        return '<div class="orbin-step orbin-empty"><small>no steps</small></div>'
    return '<div class="orbin-arrow">↓</div>'.join(boxes)


def step_graph_html(spec: dict[str, Any]) -> str:
    trigger = spec.get("trigger") or {}
    cfg = trigger.get("config") or {}
    what = cfg.get("eventType") or cfg.get("cron") or cfg.get("provider") or ""
    kind = html.escape(str(trigger.get("type", "manual")))
    head = (
        f'<div class="orbin-step orbin-trigger"><b>⚡ {kind}</b>'
        f"<small>{html.escape(str(what))}</small></div>"
    )
    steps = _steps(spec.get("steps") or [])
    return f'<div class="orbin-graph">{head}<div class="orbin-arrow">↓</div>{steps}</div>'
