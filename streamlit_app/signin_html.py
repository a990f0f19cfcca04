"""The HTML of the dashboard's sign-in pages (served before Streamlit: nothing of an
organization is on them). Every value is escaped here."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse


def esc(value: str) -> str:
    return html.escape(value, quote=True)


def page(
    *, title: str, body: str, message: str = "", kind: str = "error", preload: str = ""
) -> str:
    note = f'<p class="note {kind}" role="alert">{esc(message)}</p>' if message else ""
    return PAGE.format(title=esc(title), preload=preload, note=note, body=body)


def form_response(
    request: Request,
    text: str,
    *,
    status: int,
    headers: dict[str, str] | None = None,
    csrf: tuple[str, str, str] | None = None,
) -> HTMLResponse:
    """A page with a form: never cached nor framed, with ``headers``; ``csrf`` (cookie name,
    token, path) sets the double-submit cookie its form is checked against."""
    response = HTMLResponse(text, status_code=status)
    response.headers["cache-control"] = "no-store"
    response.headers["x-frame-options"] = "DENY"
    response.headers.update(headers or {})
    if csrf:
        name, token, path = csrf
        response.set_cookie(
            name,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=path,
        )
    return response


def password_form(*, csrf: str, next_url: str, email: str = "") -> str:
    return PASSWORD_FORM.format(csrf=esc(csrf), next=esc(next_url), email=esc(email))


def mfa_form(*, csrf: str, next_url: str) -> str:
    return MFA_FORM.format(csrf=esc(csrf), next=esc(next_url))


def mfa_setup_form(*, csrf: str, secret: str, uri: str, why: str) -> str:
    return MFA_SETUP_FORM.format(csrf=esc(csrf), secret=esc(secret), uri=esc(uri), why=esc(why))


def recovery_codes(codes: list[str]) -> str:
    items = "".join(f"<li><code>{esc(c)}</code></li>" for c in codes)
    return RECOVERY_CODES.format(items=items)


PASSWORD_FORM = """
  <p class="lead">Sign in to your organization's dashboard.</p>
  <form method="post" action="/signin">
    <input type="hidden" name="csrf" value="{csrf}">
    <input type="hidden" name="next" value="{next}">
    <input type="hidden" name="step" value="password">
    <label for="email">Email</label>
    <input id="email" name="email" type="email" autocomplete="username" required autofocus
      value="{email}">
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password"
      required>
    <button type="submit">Sign in</button>
  </form>
  <form method="post" action="/signin/sso" class="sso">
    <input type="hidden" name="csrf" value="{csrf}">
    <input type="hidden" name="next" value="{next}">
    <label for="sso-org">Single sign-on: your organization's slug</label>
    <div class="row">
      <input id="sso-org" name="org" type="text" autocomplete="organization"
        pattern="[a-z0-9-]+" required>
      <button type="submit" class="secondary">Continue with SSO</button>
    </div>
  </form>
"""

MFA_FORM = """
  <p class="lead">Two-factor authentication: enter the 6-digit code from your authenticator
    app, or one of your recovery codes.</p>
  <form method="post" action="/signin">
    <input type="hidden" name="csrf" value="{csrf}">
    <input type="hidden" name="next" value="{next}">
    <input type="hidden" name="step" value="mfa">
    <label for="code">Authentication code</label>
    <input id="code" name="code" type="text" autocomplete="one-time-code" required autofocus
      maxlength="64" spellcheck="false">
    <button type="submit">Verify</button>
  </form>
  <p class="alt"><a href="/signin">Sign in with another account</a></p>
"""

MFA_SETUP_FORM = """
  <p class="lead">{why}</p>
  <p>Add this key to your authenticator app (or open the link on your phone):</p>
  <p><code id="mfa-secret">{secret}</code> · <a href="{uri}" id="mfa-uri">otpauth link</a></p>
  <form method="post" action="/mfa/setup">
    <input type="hidden" name="csrf" value="{csrf}">
    <label for="code">The 6-digit code it shows</label>
    <input id="code" name="code" type="text" autocomplete="one-time-code" required autofocus
      inputmode="numeric" maxlength="12">
    <button type="submit">Turn on two-factor authentication</button>
  </form>
  <p class="alt"><a href="/signout">Sign out</a></p>
"""

RECOVERY_CODES = """
  <p class="lead">Two-factor authentication is on. Keep these recovery codes somewhere safe:
    each signs you in once without your phone. They are shown only now.</p>
  <ul class="codes" id="recovery-codes">{items}</ul>
  <p><a href="/" class="button">Continue to the dashboard</a></p>
"""

# The card every page served before Streamlit is drawn on (sign-in, MFA, invitation); a
# str.format template like the pages it is part of.
CARD_CSS = """\
  * {{ box-sizing: border-box; }}
  body {{ margin: 0; min-height: 100vh; display: grid; place-items: center;
    font-family: "Source Sans Pro", system-ui, -apple-system, "Segoe UI", sans-serif;
    background: #f0f9ff; color: #0f172a; }}
  main {{ width: min(420px, 92vw); background: #fff; border: 1px solid #e2e8f0;
    border-radius: 12px; padding: 2rem; box-shadow: 0 10px 30px rgba(2, 132, 199, .08); }}
"""

PAGE = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>{title} · Orbin</title>
{preload}
<style>
"""
    + CARD_CSS
    + """\
  h1 {{ margin: 0 0 .25rem; font-size: 1.5rem; }}
  .brand {{ color: #0284c7; font-weight: 700; letter-spacing: .02em; }}
  p.lead {{ margin: 0 0 1.5rem; color: #475569; }}
  label {{ display: block; font-size: .9rem; margin: 1rem 0 .35rem; color: #334155; }}
  input {{ width: 100%; padding: .6rem .75rem; border: 1px solid #cbd5e1; border-radius: 8px;
    font-size: 1rem; }}
  input:focus {{ outline: 2px solid #38bdf8; border-color: #0284c7; }}
  button, a.button {{ display: block; width: 100%; margin-top: 1.5rem; padding: .7rem;
    border: 0; border-radius: 8px; background: #0284c7; color: #fff; font-size: 1rem;
    font-weight: 600; cursor: pointer; text-align: center; text-decoration: none; }}
  button:hover, a.button:hover {{ background: #0369a1; }}
  form.sso {{ margin-top: 1.5rem; padding-top: 1rem; border-top: 1px solid #e2e8f0; }}
  .row {{ display: flex; gap: .5rem; }}
  .row button {{ width: auto; margin-top: 0; white-space: nowrap; }}
  button.secondary {{ background: #e0f2fe; color: #075985; }}
  button.secondary:hover {{ background: #bae6fd; }}
  .alt {{ margin-top: 1rem; font-size: .9rem; }}
  code {{ font-size: .95rem; background: #f1f5f9; padding: .1rem .3rem; border-radius: 4px;
    word-break: break-all; }}
  ul.codes {{ columns: 2; padding-left: 1.2rem; }}
  .note {{ padding: .6rem .75rem; border-radius: 8px; font-size: .9rem; }}
  .note.error {{ background: #fee2e2; color: #b91c1c; }}
  .note.info {{ background: #e0f2fe; color: #075985; }}
</style></head>
<body><main>
  <h1><span class="brand">Orbin</span></h1>
  {note}
  {body}
</main></body></html>
"""
)
