"""Live updates: a tiny browser component that listens to the dashboard's change socket
(``/live/changes``, see streamlit_app/live.py) and reruns the fragment it sits in when a change
of the kinds it watches arrives. Its JavaScript ships here (no CDN, no iframe).

Put ``watch_changes(...)`` inside an ``st.fragment``: a change reruns that fragment only, which
re-reads its panel. Changes in a burst are coalesced (at most one rerun per ``THROTTLE_MS``,
the first at once), so a run's steps finishing quickly cost a few reruns, not one per step.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

import streamlit as st

from streamlit_app.live import LIVE_PATH
from streamlit_app.services.base import latest_change

THROTTLE_MS = 250

_JS = r"""
const THROTTLE_MS = __THROTTLE__;

function fire(entry) {
  const now = Date.now();
  if (entry.timer) return;
  const wait = Math.max(0, entry.last + THROTTLE_MS - now);
  entry.timer = setTimeout(() => {
    entry.timer = null;
    entry.last = Date.now();
    entry.count += 1;
    try { entry.trigger("change", entry.count); } catch (e) { /* unmounted meanwhile */ }
  }, wait);
}

function listen(url, entry) {
  if (entry.stopped) return;
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + url);
  entry.ws = ws;
  ws.onopen = () => {
    if (entry.opened) fire(entry);  // reconnected: something may have changed meanwhile
    entry.opened = true;
    document.documentElement.dataset.orbinLive = "connected";
  };
  ws.onmessage = (msg) => {
    if (!String(msg.data).includes('"kind":"ping"')) fire(entry);
  };
  ws.onclose = (ev) => {
    document.documentElement.dataset.orbinLive = "closed";
    if (entry.stopped || ev.code === 1008) return;  // refused: not signed in, or no access
    setTimeout(() => listen(url, entry), 1000);
  };
}

export default function (component) {
  const { data, setTriggerValue } = component;
  const url = data && data.url;
  if (!url) return;
  const start = url + (data.after != null ? "&after=" + data.after : "");
  const streams = (window.__orbinLive = window.__orbinLive || {});
  let entry = streams[url];
  if (entry) {
    clearTimeout(entry.closing);
    entry.trigger = setTriggerValue;
  } else {
    entry = streams[url] = { trigger: setTriggerValue, last: 0, count: 0, timer: null,
                             ws: null, opened: false, stopped: false, closing: null };
    listen(start, entry);
  }
  return () => {
    // Rerenders unmount and mount again at once; only a lasting unmount closes the stream.
    clearTimeout(entry.closing);
    entry.closing = setTimeout(() => {
      entry.stopped = true;
      if (entry.ws) entry.ws.close();
      delete streams[url];
    }, 3000);
  };
}
""".replace("__THROTTLE__", str(THROTTLE_MS))

_live = st.components.v2.component("orbin_live_changes", js=_JS)


def stream_url(organization_id: str, kinds: Iterable[str], run_id: str | None = None) -> str:
    url = f"{LIVE_PATH}?org={quote(organization_id, safe='')}&kinds={','.join(sorted(kinds))}"
    return url + (f"&run={quote(run_id, safe='')}" if run_id else "")


def watch_changes(
    organization_id: str, kinds: Iterable[str], *, key: str, run_id: str | None = None
) -> None:
    """Rerun the enclosing fragment when this organization's ``kinds`` change (of one run,
    with ``run_id``)."""
    _live(
        key=key,
        data={"url": stream_url(organization_id, kinds, run_id), "after": latest_change()},
        on_change_change=lambda: None,
        height=0,
    )
