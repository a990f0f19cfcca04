"""A per-step HTTP proxy on a unix socket: the sandbox's only way out. Each request or
CONNECT tunnel is checked by the egress policy and connected to the checked address."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

from tenancy import egress

log = logging.getLogger("orbin.sandbox")

MAX_HEAD_BYTES = 64 * 1024
MAX_CONNECTIONS = 16
CONNECT_TIMEOUT = 10.0


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


def _answer(writer: asyncio.StreamWriter, status: str, message: str) -> None:
    body = message.encode()
    writer.write(
        f"HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {len(body)}\r\n"
        "connection: close\r\n\r\n".encode()
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


class EgressProxy:
    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._server: asyncio.AbstractServer | None = None
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> EgressProxy:
        self._server = await asyncio.start_unix_server(self._serve, path=self.socket_path)
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
        try:
            method, target, version = lines[0].split(" ")
            host, port, path, tunnel = _target(method.upper(), target)
            ips = await egress.acheck(host, port)
        except egress.EgressRefused as exc:
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
