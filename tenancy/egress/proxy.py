"""The egress policy as an HTTP proxy: each plain-http request and each CONNECT tunnel is
checked and connected to the checked address (TLS stays end to end). Two uses: the python-step
sandbox's only way out (``EgressProxy`` on a unix socket per step), and the providers' SDKs
that bring their own HTTP stack (``LoopbackProxy``: one instance per process on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import atexit
import base64
import binascii
import contextlib
import logging
import os
import secrets
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from tenancy.egress import transport
from tenancy.egress.policy import IPAddress
from tenancy.errors import EgressRefused

log = logging.getLogger("orbin.egress")

Check = Callable[[str, int], list[IPAddress]]

MAX_HEAD_BYTES = 64 * 1024
MAX_CONNECTIONS = 16
CONNECT_TIMEOUT = 10.0
MAX_TICKETS = 10_000


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


def _answer(writer: asyncio.StreamWriter, status: str, message: str, extra: str = "") -> None:
    body = message.encode()
    writer.write(
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {len(body)}\r\n"
        f"{extra}connection: close\r\n\r\n".encode()
        + body
    )


def _target(method: str, target: str) -> tuple[str, int, str, bool]:
    """host, port, origin-form path, and whether it is a CONNECT tunnel."""
    if method == "CONNECT":
        parts = urlsplit("//" + target)
        if parts.port is None:
            raise ValueError("CONNECT needs host:port")
        return parts.hostname or "", parts.port, "", True
    parts = urlsplit(target)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError("only absolute http:// URLs (or CONNECT for https) go through")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.hostname, parts.port or 80, path, False


def _header(lines: list[str], name: str) -> str | None:
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name:
            return value.strip()
    return None


def _ticket(value: str | None) -> str | None:
    """The password of ``Proxy-Authorization: Basic ...``: the caller's ticket."""
    scheme, _, encoded = (value or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(encoded.strip(), validate=True).decode().partition(":")[2]
    except (binascii.Error, UnicodeDecodeError):
        return None


class Tickets:
    """Who may use a shared proxy, and what it refused them. One ticket per SDK call (sent as
    the proxy password): nothing else on the host can use the proxy, and a refusal reaches the
    call that caused it, in the policy's words, whatever the SDK makes of a 403."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: dict[str, str | None] = {}

    def issue(self) -> str:
        ticket = secrets.token_urlsafe(18)
        with self._lock:
            if len(self._live) >= MAX_TICKETS:  # callers that never closed theirs
                self._live.pop(next(iter(self._live)))
            self._live[ticket] = None
        return ticket

    def valid(self, ticket: str | None) -> bool:
        with self._lock:
            return ticket is not None and ticket in self._live

    def refuse(self, ticket: str, message: str) -> None:
        with self._lock:
            if ticket in self._live and self._live[ticket] is None:
                self._live[ticket] = message

    def close(self, ticket: str) -> str | None:
        """Forget ``ticket``; the first refusal it met, if any."""
        with self._lock:
            return self._live.pop(ticket, None)


class EgressProxy:
    """On the unix socket ``socket_path``, else on 127.0.0.1 (an ephemeral port: ``port``).
    ``check`` is the policy (``tenancy.egress.check`` by default); with ``tickets``, a request
    without a live ticket is answered 407."""

    def __init__(
        self,
        socket_path: str | None = None,
        *,
        check: Check = transport.check,
        tickets: Tickets | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.socket_path = socket_path
        self.port = 0
        self._check = check
        self._tickets = tickets
        self._server: asyncio.AbstractServer | None = None
        self._slots = asyncio.Semaphore(max_connections)
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> EgressProxy:
        if self.socket_path is not None:
            self._server = await asyncio.start_unix_server(self._serve, path=self.socket_path)
        else:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            async with self._slots:
                await self._handle(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        if len(head) > MAX_HEAD_BYTES:
            _answer(writer, "431 Request Header Fields Too Large", "request head too large")
            return
        lines = head.decode("latin-1").split("\r\n")
        ticket = _ticket(_header(lines, "proxy-authorization"))
        if self._tickets is not None and not self._tickets.valid(ticket):
            auth = 'proxy-authenticate: Basic realm="orbin-egress"\r\n'
            _answer(writer, "407 Proxy Authentication Required", "no valid ticket", auth)
            return
        try:
            method, target, version = lines[0].split(" ")
            host, port, path, tunnel = _target(method.upper(), target)
            ips = await asyncio.to_thread(self._check, host, port)
            if self.port and port == self.port and ips[0].is_loopback:
                raise EgressRefused(f"egress to {host}:{port} refused: the egress proxy itself")
        except EgressRefused as exc:
            if self._tickets is not None and ticket is not None:
                self._tickets.refuse(ticket, exc.message)
            _answer(writer, "403 Forbidden", exc.message)
            return
        except ValueError as exc:
            _answer(writer, "400 Bad Request", str(exc))
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(str(ips[0]), port), CONNECT_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            _answer(writer, "502 Bad Gateway", f"cannot connect to {host}:{port}: {exc}")
            return
        try:
            if tunnel:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                keep = [
                    line
                    for line in lines[1:]
                    if line
                    and line.split(":", 1)[0].strip().lower()
                    not in ("proxy-connection", "connection", "keep-alive", "proxy-authorization")
                ]
                request = "\r\n".join([f"{method} {path} {version}", *keep, "connection: close"])
                up_writer.write((request + "\r\n\r\n").encode("latin-1"))
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                up_writer.close()


class LoopbackProxy:
    """One ``EgressProxy`` on 127.0.0.1 for this process, for synchronous clients (SDKs) that
    can be given a proxy: started on first use in a daemon thread with its own event loop
    (again in a forked child), closed at exit. Every request needs a ticket of ``tickets``."""

    def __init__(self, check: Check, *, max_connections: int = 256) -> None:
        self.tickets = Tickets()
        self._check = check
        self._max_connections = max_connections
        self._lock = threading.Lock()
        self._running: tuple[int, asyncio.AbstractEventLoop, EgressProxy] | None = None

    def url(self, ticket: str) -> str:
        """The proxy URL a client uses for ``ticket`` (for http and https alike)."""
        return f"http://orbin:{ticket}@127.0.0.1:{self._proxy().port}"

    def _proxy(self) -> EgressProxy:
        with self._lock:
            if self._running is None or self._running[0] != os.getpid():
                self._running = self._start()
            return self._running[2]

    def _start(self) -> tuple[int, asyncio.AbstractEventLoop, EgressProxy]:
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="orbin-egress-proxy", daemon=True).start()
        proxy = EgressProxy(
            check=self._check, tickets=self.tickets, max_connections=self._max_connections
        )
        asyncio.run_coroutine_threadsafe(proxy.__aenter__(), loop).result(10)
        atexit.register(self.close)
        log.debug("egress proxy on 127.0.0.1:%s", proxy.port)
        return os.getpid(), loop, proxy

    def close(self) -> None:
        with self._lock:
            running, self._running = self._running, None
        if running is None or running[0] != os.getpid():
            return
        _, loop, proxy = running
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(proxy.__aexit__(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
