"""A small Server-Sent Events client for tests: reads a stream in the background."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx


class SSEReader:
    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url = url
        self.headers = headers
        self.messages: list[dict[str, Any]] = []
        self.comments: list[str] = []
        self.status: int | None = None
        self.body: bytes = b""
        self.connected = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SSEReader:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.connected.wait(), timeout=30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        timeout = httpx.Timeout(10, read=None)
        try:
            async with (
                httpx.AsyncClient(timeout=timeout) as client,
                client.stream("GET", self.url, headers=self.headers) as resp,
            ):
                self.status = resp.status_code
                if resp.status_code != 200:
                    self.body = await resp.aread()
                    return
                msg: dict[str, Any] = {}
                async for line in resp.aiter_lines():
                    if line == "":
                        if "event" in msg or "data" in msg:
                            self.messages.append(msg)
                            self._changed.set()
                        msg = {}
                    elif line.startswith(":"):
                        self.comments.append(line[1:].strip())
                        self._changed.set()
                        if line[1:].strip() == "connected":
                            self.connected.set()
                    else:
                        field, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        msg[field] = json.loads(value) if field == "data" else value
        finally:
            self.connected.set()

    async def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for m in self.messages:
                if predicate(m):
                    return m
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no such message within {timeout}s; got {self.messages}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=remaining)
            except TimeoutError:
                pass
