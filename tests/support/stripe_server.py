"""A local server speaking Stripe's REST protocol, for tests driving the real ``stripe`` SDK:
form-encoded requests (bracket notation), JSON objects, Stripe's error bodies and statuses,
``Authorization: Bearer sk_...``. Records every request; ``fail(path, status)`` scripts errors.
Also signs webhook payloads the way Stripe does (``Stripe-Signature: t=...,v1=...``)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


def parse_form(raw: str) -> dict[str, Any]:
    """``a[b][0][c]=1`` -> ``{"a": {"b": [{"c": "1"}]}}`` (lists where indexes are numbers)."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt_is_index = not last and parts[i + 1].isdigit()
            if isinstance(node, list):
                idx = int(part)
                while len(node) <= idx:
                    node.append([] if nxt_is_index else {})
                if last:
                    node[idx] = value
                else:
                    node = node[idx]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, [] if nxt_is_index else {})
    return root


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, Any]
    fields: dict[str, Any]
    headers: dict[str, str]


class StripeServer:
    def __init__(self, *, api_key: str = "sk_test_orbin") -> None:
        self.api_key = api_key
        self.requests: list[Request] = []
        self.customers: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.meter_events: dict[str, dict[str, Any]] = {}
        self.invoices: list[dict[str, Any]] = []
        self.prices = [
            {"id": "price_pro", "object": "price", "lookup_key": "pro", "active": True,
             "unit_amount": 4900, "currency": "usd", "recurring": {"interval": "month",
             "usage_type": "licensed"}, "product": "prod_pro"},
            {"id": "price_biz", "object": "price", "lookup_key": "business", "active": True,
             "unit_amount": 29900, "currency": "usd", "recurring": {"interval": "month",
             "usage_type": "licensed"}, "product": "prod_biz"},
        ]  # fmt: skip
        self._failures: dict[str, list[int]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("content-length") or 0)).decode()
                req = Request(
                    self.command,
                    parts.path,
                    parse_form(parts.query),
                    parse_form(raw),
                    {k.lower(): v for k, v in self.headers.items()},
                )
                status, body = server._route(req)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("request-id", f"req_{next(server._ids)}")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> StripeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail(self, path: str, *statuses: int) -> None:
        """The next requests to ``path`` answer these statuses (Stripe error bodies)."""
        self._failures[path] = list(statuses)

    def calls(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path)]

    # --- the protocol -------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    @staticmethod
    def _error(status: int, message: str, type_: str = "invalid_request_error", **extra: Any):
        return status, {"error": {"type": type_, "message": message, **extra}}

    def _route(self, req: Request) -> tuple[int, Any]:
        with self._lock:
            self.requests.append(req)
            if req.headers.get("authorization") != f"Bearer {self.api_key}":
                return self._error(401, "Invalid API Key provided")
            queued = self._failures.get(req.path)
            if queued:
                status = queued.pop(0)
                kind = "api_error" if status >= 500 else "invalid_request_error"
                return self._error(status, "scripted failure", kind)
            return self._dispatch(req)

    def _dispatch(self, req: Request) -> tuple[int, Any]:
        f, path = req.fields, req.path
        if req.method == "POST" and path == "/v1/customers":
            cus = {"id": self._id("cus"), "object": "customer", "email": f.get("email"),
                   "name": f.get("name"), "metadata": f.get("metadata", {})}  # fmt: skip
            self.customers[cus["id"]] = cus
            return 200, cus
        if req.method == "GET" and path.startswith("/v1/customers/"):
            cus = self.customers.get(path.rsplit("/", 1)[-1])
            return (200, cus) if cus else self._error(404, "No such customer", param="id")
        if req.method == "GET" and path == "/v1/prices":
            keys = req.query.get("lookup_keys") or []
            keys = list(keys.values()) if isinstance(keys, dict) else keys
            data = [p for p in self.prices if not keys or p["lookup_key"] in keys]
            return 200, {"object": "list", "url": "/v1/prices", "has_more": False, "data": data}
        if req.method == "POST" and path == "/v1/checkout/sessions":
            for param in ("mode", "success_url", "line_items"):
                if not f.get(param):
                    return self._error(400, f"Missing required param: {param}.", param=param)
            if f.get("customer") and f["customer"] not in self.customers:
                return self._error(400, f"No such customer: '{f['customer']}'", param="customer")
            sid = self._id("cs_test")
            return 200, {"id": sid, "object": "checkout.session", "mode": f["mode"],
                         "customer": f.get("customer"), "metadata": f.get("metadata", {}),
                         "url": f"https://checkout.stripe.test/c/pay/{sid}"}  # fmt: skip
        if req.method == "POST" and path == "/v1/billing_portal/sessions":
            if f.get("customer") not in self.customers:
                return self._error(400, "No such customer", param="customer")
            bid = self._id("bps")
            return 200, {"id": bid, "object": "billing_portal.session",
                         "customer": f["customer"], "return_url": f.get("return_url"),
                         "url": f"https://billing.stripe.test/p/session/{bid}"}  # fmt: skip
        if req.method == "GET" and path == "/v1/invoices":
            data = [i for i in self.invoices if i.get("customer") == req.query.get("customer")]
            return 200, {"object": "list", "url": "/v1/invoices", "has_more": False, "data": data}
        if req.method == "GET" and path.startswith("/v1/subscriptions/"):
            sub = self.subscriptions.get(path.rsplit("/", 1)[-1])
            return (200, sub) if sub else self._error(404, "No such subscription", param="id")
        if req.method == "POST" and path.startswith("/v1/subscriptions/"):
            sub = self.subscriptions.get(path.rsplit("/", 1)[-1])
            if sub is None:
                return self._error(404, "No such subscription", param="id")
            changes = f.get("items") or []
            for change in changes.values() if isinstance(changes, dict) else changes:
                item = next((i for i in sub["items"]["data"] if i["id"] == change.get("id")), None)
                price = next((p for p in self.prices if p["id"] == change.get("price")), None)
                if item is None or price is None:
                    return self._error(400, "No such subscription item or price", param="items")
                item["price"] = price
            sub["metadata"].update(f.get("metadata") or {})
            return 200, sub
        if req.method == "POST" and path == "/v1/billing/meter_events":
            ident = f.get("identifier") or self._id("mev")
            self.meter_events.setdefault(ident, f)  # Stripe keeps one event per identifier
            return 200, {"object": "billing.meter_event", "identifier": ident,
                         "event_name": f.get("event_name"), "payload": f.get("payload", {}),
                         "created": int(time.time())}  # fmt: skip
        return self._error(404, f"Unrecognized request URL ({req.method}: {path})")

    def subscription(
        self, *, org_id: str, customer: str, lookup_key: str = "pro", status: str = "active"
    ) -> dict[str, Any]:
        """A subscription as Stripe stores it (and sends it in webhooks)."""
        now = int(time.time())
        price = next(p for p in self.prices if p["lookup_key"] == lookup_key)
        item = {"id": self._id("si"), "object": "subscription_item", "price": price,
                "current_period_start": now, "current_period_end": now + 30 * 86400}  # fmt: skip
        sub = {"id": self._id("sub"), "object": "subscription", "customer": customer,
               "status": status, "metadata": {"orbin_org_id": org_id}, "created": now,
               "items": {"object": "list", "data": [item]}}  # fmt: skip
        self.subscriptions[sub["id"]] = sub
        return sub


def event(kind: str, obj: dict[str, Any], *, event_id: str, created: int | None = None):
    return {"id": event_id, "object": "event", "type": kind, "api_version": "2025-04-30.basil",
            "created": int(time.time()) if created is None else created, "livemode": False,
            "pending_webhooks": 1, "data": {"object": obj}}  # fmt: skip
