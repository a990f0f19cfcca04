"""The whole platform (`orbin up`) for end-to-end integration tests, once per backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import require_postgres
from tests.support import services


@pytest.fixture(scope="session")
def platform_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Platform]:
    p = services.start_platform(tmp_path_factory.mktemp("orbin-sqlite"))
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="session")
def platform_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Platform]:
    require_postgres()
    orbin_db = services.create_pg_database("orbin_it")
    prefect_db = services.create_pg_database("prefect_it")
    p = services.start_platform(
        tmp_path_factory.mktemp("orbin-pg"),
        database_url=services.pg_url(orbin_db),
        prefect_database_url=services.pg_url(prefect_db, driver="asyncpg"),
    )
    try:
        yield p
    finally:
        p.stop()
        services.drop_pg_database(orbin_db)
        services.drop_pg_database(prefect_db)


@pytest.fixture(params=["sqlite", "postgres"])
def platform(request: pytest.FixtureRequest) -> services.Platform:
    name = "platform_sqlite" if request.param == "sqlite" else "platform_pg"
    return request.getfixturevalue(name)
