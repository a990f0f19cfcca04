"""A local HTTPS server speaking Salesforce's REST API (limits, sObject create, SOQL query),
with a self-signed certificate for 127.0.0.1: simple-salesforce always speaks HTTPS.
Point requests at the certificate with ``REQUESTS_CA_BUNDLE=<server.ca_file>``."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SALESFORCE_TOKEN = "00Dtest!sf-access-token-123"


def _certificate(folder: Path, host: str, names: tuple[str, ...]) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(host)), *map(x509.DNSName, names)]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class SalesforceServer:
    """On ``host:port`` (127.0.0.1, an ephemeral port by default); the certificate also
    names ``names``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, names: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self._dir = tempfile.TemporaryDirectory()
        cert, key = _certificate(Path(self._dir.name), host, names)
        self.ca_file = str(cert)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, obj: Any) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json;charset=UTF-8")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                body = json.loads(raw) if raw else None
                parts = urlsplit(self.path)
                server.calls.append((self.command, self.path, body))
                if self.headers.get("authorization") != f"Bearer {SALESFORCE_TOKEN}":
                    return self._send(
                        401,
                        [
                            {
                                "message": "Session expired or invalid",
                                "errorCode": "INVALID_SESSION_ID",
                            }
                        ],
                    )
                path = parts.path.rstrip("/")
                if path.endswith("/limits"):
                    return self._send(200, {"DailyApiRequests": {"Max": 15000, "Remaining": 14998}})
                if path.endswith("/sobjects/Contact") and self.command == "POST":
                    if not (body or {}).get("LastName"):
                        return self._send(
                            400,
                            [
                                {
                                    "message": "Required fields are missing: [LastName]",
                                    "errorCode": "REQUIRED_FIELD_MISSING",
                                    "fields": ["LastName"],
                                }
                            ],
                        )
                    return self._send(201, {"id": "003TEST0001", "success": True, "errors": []})
                if path.endswith("/query"):
                    soql = parse_qs(parts.query).get("q", [""])[0]
                    return self._send(
                        200,
                        {
                            "totalSize": 1,
                            "done": True,
                            "records": [
                                {
                                    "attributes": {"type": "Contact", "url": "/x"},
                                    "Id": "003TEST0001",
                                    "LastName": "Lovelace",
                                    "Soql": soql,
                                }
                            ],
                        },
                    )
                return self._send(
                    404,
                    [
                        {
                            "message": "The requested resource does not exist",
                            "errorCode": "NOT_FOUND",
                        }
                    ],
                )

            do_GET = do_POST = do_PATCH = do_DELETE = _handle  # noqa: N815

        self.server = ThreadingHTTPServer((host, port), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"https://{host}:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._dir.cleanup()
