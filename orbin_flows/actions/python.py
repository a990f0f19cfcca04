"""``python``: a snippet run in its own interpreter, with time and memory limits.

The snippet defines ``def main(input): ...`` (or sets ``output``); ``input`` is the rendered
``config.input``. A crash, a hang or a memory blow-up fails this step only.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
from typing import Any

from pydantic import Field

from orbin_flows.actions.base import (
    Action,
    ActionConfig,
    FatalStepError,
    RetryableStepError,
    StepContext,
    register,
)

# Limits are set by the child itself, before the snippet runs (no preexec_fn: the worker
# has threads, and forking with them and running Python before exec can deadlock).
_RUNNER = r"""
import json, resource, sys
memory, cpu = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
data = json.loads(sys.stdin.read())
scope = {"__name__": "orbin_step", "input": data["input"]}
exec(compile(data["code"], "<step>", "exec"), scope)
if callable(scope.get("main")):
    result = scope["main"](data["input"])
else:
    result = scope.get("output")
sys.stdout.write("\n__ORBIN_OUTPUT__" + json.dumps(result, default=str))
"""


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


@register
class Python(Action):
    name = "python"
    Config = PythonConfig

    async def run(self, config: PythonConfig, ctx: StepContext) -> Any:
        # The worker's environment holds the database URL and secrets: none of it is passed.
        with tempfile.TemporaryDirectory(prefix="orbin-python-") as workdir:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-c",
                _RUNNER,
                str(config.memory_mb * 1024 * 1024),
                str(int(config.timeout_seconds) + 1),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=workdir,
                env={"PATH": os.defpath, "LANG": "C.UTF-8", "HOME": workdir},
                start_new_session=True,
            )
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
        if len(out) > MAX_OUTPUT_BYTES:
            raise FatalStepError(f"python step wrote more than {MAX_OUTPUT_BYTES} bytes")
        text = out.decode(errors="replace")
        if proc.returncode != 0 or "__ORBIN_OUTPUT__" not in text:
            tail = err.decode(errors="replace").strip().splitlines()[-12:]
            if proc.returncode and proc.returncode < 0:
                tail.append(f"killed by signal {-proc.returncode} (time or memory limit)")
            elif any("MemoryError" in line for line in tail):
                tail.append(f"memory limit is {config.memory_mb} MB")
            elif proc.returncode:
                tail.append(f"exited with code {proc.returncode}")
            else:
                tail.append("it gave no output (define main(input) or set output)")
            raise FatalStepError("python step failed:\n" + "\n".join(tail))
        return json.loads(text.rsplit("__ORBIN_OUTPUT__", 1)[1])
