"""Verifying inbound webhook signatures: Orbin's own scheme and the providers' native ones.

- ``orbin``: ``Orbin-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`` (what
  blocks/webhook.py sends), 5 minutes of tolerance.
- ``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of body>``. GitHub signs no
  timestamp nor its ``X-GitHub-Delivery`` id: a replayed delivery is recognized by its
  signature (so by its body).
- ``stripe``: ``Stripe-Signature: t=...,v1=...``, checked by the ``stripe`` SDK itself, and
  refused when the timestamp is beyond the tolerance in the future too.

Replay protection keys on what the sender signed (the verifiers return the signature that
matched, computed here), never on an unsigned header a replayer can change.
- ``slack``: ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:ts:body">`` with
  ``X-Slack-Request-Timestamp``, 5 minutes of tolerance.

Each verifier tries every secret that is valid now (the current one, and the previous one
during a rotation's grace period) and raises ``Unauthenticated`` with the reason otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Any

from tenancy.errors import Unauthenticated

TOLERANCE_SECONDS = 300
PROVIDERS = ("orbin", "github", "stripe", "slack")


def _mac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _matches(expected: list[str], given: list[str]) -> bool:
    return _matched(expected, given) is not None


def _matched(expected: list[str], given: list[str]) -> str | None:
    """The expected signature that one of the given ones equals (ours, not the sender's
    text: a reordered or padded header names the same delivery)."""
    found = None
    for e in expected:
        for g in given:
            if hmac.compare_digest(e, g) and found is None:
                found = e
    return found


def _stale(timestamp: int, now: float) -> bool:
    return abs(now - timestamp) > TOLERANCE_SECONDS


STALE = (
    "the signature's timestamp is more than 5 minutes away from now: a stale or replayed "
    "request (check the sender's clock)"
)
MISMATCH = "the signature does not match the body and this webhook's secret"


def orbin_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header a sender computes (blocks/webhook.py signs with it; tests and clients too)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={_mac(secret, f'{ts}.'.encode() + body)}"


def verify_orbin(
    headers: Mapping[str, str], body: bytes, secrets: list[str], now: float | None = None
) -> str:
    """Returns the verified signature, a replay-proof delivery id."""
    header = headers.get("orbin-signature")
    if not header:
        raise Unauthenticated("missing Orbin-Signature header (t=<unix seconds>,v1=<hex hmac>)")
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    ts_values = [v.strip() for k, v in parts if k.strip() == "t"]
    sigs = [v.strip() for k, v in parts if k.strip() == "v1"]
    if len(ts_values) != 1 or not ts_values[0].isdigit() or not sigs:
        raise Unauthenticated(
            "malformed Orbin-Signature header: expected t=<unix seconds>,v1=<hex hmac>"
        )
    ts = int(ts_values[0])
    expected = [_mac(s, f"{ts}.".encode() + body) for s in secrets]
    matched = _matched(expected, sigs)
    if matched is None:
        raise Unauthenticated(MISMATCH)
    if _stale(ts, time.time() if now is None else now):
        raise Unauthenticated(STALE)
    return f"{ts}.{matched}"


def verify_github(headers: Mapping[str, str], body: bytes, secrets: list[str]) -> str:
    """Returns the verified signature: the delivery's replay-proof id."""
    header = headers.get("x-hub-signature-256")
    if not header:
        raise Unauthenticated("missing X-Hub-Signature-256 header (sha256=<hex hmac>)")
    if not header.startswith("sha256="):
        raise Unauthenticated("malformed X-Hub-Signature-256 header: expected sha256=<hex hmac>")
    matched = _matched([_mac(s, body) for s in secrets], [header[7:].strip()])
    if matched is None:
        raise Unauthenticated(MISMATCH)
    return matched


def stripe_timestamp(header: str) -> int | None:
    values = [v.strip() for k, _, v in (p.partition("=") for p in header.split(",")) if k == "t"]
    return int(values[0]) if len(values) == 1 and values[0].isdigit() else None


def verify_stripe(
    headers: Mapping[str, str], body: bytes, secrets: list[str], now: float | None = None
) -> Any:
    """Returns the ``stripe.Event``, verified and parsed by the Stripe SDK (which lets any
    future timestamp through: refused here beyond the tolerance)."""
    import stripe

    header = headers.get("stripe-signature")
    if not header:
        raise Unauthenticated("missing Stripe-Signature header")
    ts = stripe_timestamp(header)
    if ts is not None and ts - (time.time() if now is None else now) > TOLERANCE_SECONDS:
        raise Unauthenticated(STALE)
    try:
        payload = body.decode()
    except UnicodeDecodeError as exc:
        raise Unauthenticated("the body is not UTF-8 text") from exc
    reasons = []
    for secret in secrets:
        try:
            return stripe.Webhook.construct_event(payload, header, secret, TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError as exc:
            reasons.append(str(exc.user_message or exc))
        except ValueError as exc:  # the signature matched; the body is not a Stripe event
            raise Unauthenticated(f"the body is not a Stripe event: {exc}") from exc
    stale = [r for r in reasons if "tolerance" in r.lower()]
    if stale:
        raise Unauthenticated(STALE)
    if any("unable to extract" in r.lower() or "expected scheme" in r.lower() for r in reasons):
        raise Unauthenticated("malformed Stripe-Signature header: expected t=...,v1=...")
    raise Unauthenticated(MISMATCH)


def verify_slack(
    headers: Mapping[str, str], body: bytes, secrets: list[str], now: float | None = None
) -> str:
    """Returns ``ts.signature``: a delivery id for requests that carry no event id."""
    ts = headers.get("x-slack-request-timestamp")
    sig = headers.get("x-slack-signature")
    if not ts or not sig:
        raise Unauthenticated("missing X-Slack-Signature or X-Slack-Request-Timestamp header")
    if not ts.isdigit() or not sig.startswith("v0="):
        raise Unauthenticated("malformed Slack signature headers: expected v0=<hex hmac>")
    expected = ["v0=" + _mac(s, f"v0:{ts}:".encode() + body) for s in secrets]
    if not _matches(expected, [sig]):
        raise Unauthenticated(MISMATCH)
    if _stale(int(ts), time.time() if now is None else now):
        raise Unauthenticated(STALE)
    return f"{ts}.{sig[3:]}"
