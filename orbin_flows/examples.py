"""A workflow written directly as a Prefect flow, rolled out with ``prefect deploy``."""

from __future__ import annotations

from typing import Any

from prefect import flow, task


@task(name="Greet")
async def greet(name: str) -> str:
    return f"Hello {name}!"


@flow(name="hello-code", persist_result=False)
async def hello_code(data: dict[str, Any] | None = None) -> dict[str, Any]:
    name = (data or {}).get("name", "world")
    return {"message": await greet(name)}
