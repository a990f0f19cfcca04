"""The quick-jump palette: Ctrl/Cmd+K anywhere opens it; type to find a page, a workflow by
name, or paste a run id; Enter goes there. Its JavaScript is inline (no CDN, no iframe)."""

from __future__ import annotations

import streamlit as st

PAGES = [
    ("Overview", "/"),
    ("Workflows", "/workflows"),
    ("New workflow", "/editor"),
    ("Runs", "/runs"),
    ("Events", "/events"),
    ("Integrations", "/integrations"),
    ("API keys", "/api-keys"),
    ("Settings", "/settings"),
    ("Members", "/members"),
    ("Billing", "/billing"),
    ("Audit log", "/audit"),
    ("Account", "/account"),
]

_JS = r"""
const RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function items(query) {
  const all = window.__orbinPalette || [];
  const q = query.trim().toLowerCase();
  const found = all.filter((i) => i.label.toLowerCase().includes(q)).slice(0, 12);
  if (RUN_ID.test(query.trim())) found.unshift({ label: "Run " + query.trim(),
                                                href: "/run?id=" + query.trim() });
  return found;
}

function close() {
  const el = document.getElementById("orbin-palette");
  if (el) el.remove();
}

function open() {
  if (document.getElementById("orbin-palette")) return;
  const shade = document.createElement("div");
  shade.id = "orbin-palette";
  shade.setAttribute("role", "dialog");
  shade.setAttribute("aria-label", "Quick jump");
  shade.style.cssText = "position:fixed;inset:0;background:rgba(15,23,42,.35);z-index:100000;" +
    "display:flex;justify-content:center;align-items:flex-start;padding-top:12vh";
  const box = document.createElement("div");
  box.style.cssText = "width:min(560px,92vw);background:var(--st-background-color,#fff);" +
    "color:inherit;border-radius:12px;box-shadow:0 20px 50px rgba(0,0,0,.25);overflow:hidden";
  const input = document.createElement("input");
  input.placeholder = "Go to a page, a workflow, or paste a run id";
  input.setAttribute("aria-label", "Quick jump");
  input.style.cssText = "width:100%;box-sizing:border-box;padding:14px 16px;border:0;" +
    "border-bottom:1px solid rgba(128,128,128,.3);font-size:1rem;outline:none;" +
    "background:transparent;color:inherit";
  const list = document.createElement("ul");
  list.style.cssText = "list-style:none;margin:0;padding:6px 0;max-height:50vh;overflow:auto";
  let current = [];
  const render = () => {
    current = items(input.value);
    list.innerHTML = "";
    current.forEach((item, n) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.textContent = item.label;
      a.href = item.href;
      a.target = "_self";
      a.style.cssText = "display:block;padding:8px 16px;color:inherit;text-decoration:none;" +
        (n === 0 ? "background:rgba(2,132,199,.12)" : "");
      li.appendChild(a);
      list.appendChild(li);
    });
  };
  input.addEventListener("input", render);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && current.length) window.location.href = current[0].href;
    if (e.key === "Escape") close();
  });
  shade.addEventListener("click", (e) => { if (e.target === shade) close(); });
  box.appendChild(input);
  box.appendChild(list);
  shade.appendChild(box);
  document.body.appendChild(shade);
  render();
  input.focus();
}

export default function (component) {
  window.__orbinPalette = (component.data && component.data.targets) || [];
  if (window.__orbinPaletteReady) return;
  window.__orbinPaletteReady = true;
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k") {
      e.preventDefault();
      open();
    } else if (e.key === "Escape") {
      close();
    }
  });
}
"""

_palette = st.components.v2.component("orbin_palette", js=_JS)


def command_palette(extra: list[dict[str, str]]) -> None:
    targets = [{"label": label, "href": href} for label, href in PAGES] + extra
    _palette(key="shell.palette", data={"targets": targets}, height=0)
