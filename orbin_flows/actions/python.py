"""``python``: a snippet run in its own sandboxed interpreter, with time and memory limits.

The snippet defines ``def main(input): ...`` (or sets ``output``); ``input`` is the rendered
``config.input``. A crash, a hang or a memory blow-up fails this step only.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Any

from pydantic import Field

from orbin_flows import sandbox
from orbin_flows.actions.base import (
    Action,
    ActionConfig,
    FatalStepError,
    RetryableStepError,
    StepContext,
    register,
)


class PythonConfig(ActionConfig):
    code: str = Field(min_length=1, max_length=100_000)
    input: Any = None
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600, alias="timeoutSeconds")
    memory_mb: int = Field(default=256, ge=32, le=4096, alias="memoryMb")


MAX_OUTPUT_BYTES = 10 * 1024 * 1024


async def _read(stream: asyncio.StreamReader | None, proc: asyncio.subprocess.Process) -> bytes:
    """At most MAX_OUTPUT_BYTES (+1 to tell): a snippet cannot fill the worker's memory."""
    chunks: list[bytes] = []
    size = 0
    while stream is not None:
        chunk = await stream.read(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_OUTPUT_BYTES:
            _kill(proc)
            break
    return b"".join(chunks)


async def _communicate(proc: asyncio.subprocess.Process, data: bytes) -> tuple[bytes, bytes]:
    assert proc.stdin is not None
    try:
        proc.stdin.write(data)
        await proc.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass
    proc.stdin.close()
    out, err = await asyncio.gather(_read(proc.stdout, proc), _read(proc.stderr, proc))
    await proc.wait()
    return out, err[-20_000:]


def _kill(proc: asyncio.subprocess.Process) -> None:
    """The snippet and anything it started (its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _raised(stderr: str) -> tuple[str, str | None] | None:
    """What the sandbox runner reports of an exception the snippet raised (see bwrap.RUNNER)."""
    if "\n__STEP_ERROR__" not in stderr:
        return None
    try:
        doc = json.loads(stderr.rsplit("\n__STEP_ERROR__", 1)[1].split("\n", 1)[0])
        return str(doc["message"]), str(doc["stack"]) or None
    except (ValueError, KeyError, TypeError):
        return None


@register
class Python(Action):
    name = "python"
    Config = PythonConfig

    async def run(self, config: PythonConfig, ctx: StepContext) -> Any:
        # In its own bubblewrap sandbox (orbin_flows.sandbox): no Orbin files, environment,
        # processes or network except through the egress policy. Never run unsandboxed.
        try:
            box = sandbox.python_process(
                memory_bytes=config.memory_mb * 1024 * 1024,
                cpu_seconds=int(config.timeout_seconds) + 1,
            )
            async with box as proc:
                payload = json.dumps({"code": config.code, "input": config.input}, default=str)
                try:
                    out, err = await asyncio.wait_for(
                        _communicate(proc, payload.encode()), config.timeout_seconds
                    )
                except (TimeoutError, asyncio.CancelledError) as exc:
                    _kill(proc)
                    await proc.wait()
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    raise RetryableStepError(
                        f"python step timed out after {config.timeout_seconds}s"
                    ) from exc
        except sandbox.SandboxUnavailable as exc:
            raise FatalStepError(f"python step not run: {exc}") from exc
        if len(out) > MAX_OUTPUT_BYTES:
            raise FatalStepError(f"python step wrote more than {MAX_OUTPUT_BYTES} bytes")
        text = out.decode(errors="replace")
        said = err.decode(errors="replace")
        raised = _raised(said) if proc.returncode == 1 else None
        if raised is not None:  # the snippet raised: its message, and its own frames
            message = f"python step failed: {raised[0]}"
            if "MemoryError" in raised[0]:
                message += f" (memory limit is {config.memory_mb} MB)"
            raise FatalStepError(message, stack=raised[1])
        if proc.returncode != 0 or "__STEP_OUTPUT__" not in text:
            tail = said.strip().splitlines()[-12:]
            if proc.returncode and proc.returncode < 0:
                tail.append(f"killed by signal {-proc.returncode} (time or memory limit)")
            elif any("MemoryError" in line for line in tail):
                tail.append(f"memory limit is {config.memory_mb} MB")
            elif proc.returncode:
                tail.append(f"exited with code {proc.returncode}")
            else:
                tail.append("it gave no output (define main(input) or set output)")
            raise FatalStepError("python step failed:\n" + "\n".join(tail))
        return json.loads(text.rsplit("__STEP_OUTPUT__", 1)[1])
