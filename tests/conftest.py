"""Shared fixtures: a fresh Orbin database per backend (SQLite always, PostgreSQL when it
answers), organizations with keys, and the API in-process."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import services

IN_CI = os.environ.get("CI", "").lower() == "true"
_PG = services.postgres_available()
_REDIS = services.redis_available()


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"postgres: {'yes' if _PG else 'no'}; redis: {'yes' if _REDIS else 'no'}; CI: {IN_CI}"]


def require_postgres() -> None:
    if not _PG:
        if IN_CI and os.environ.get("ORBIN_TEST_REQUIRE_PG") == "1":
            pytest.fail("PostgreSQL is required here but does not answer on 127.0.0.1:5432")
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")


def require_redis() -> None:
    if not _REDIS:
        pytest.skip("Redis does not answer on 127.0.0.1:6379")


def _configure(home: Path, url: str) -> None:
    from tenancy import config, crypto, db

    os.environ["ORBIN_HOME"] = str(home)
    os.environ["ORBIN_DATABASE_URL"] = url
    config.reset_settings()
    crypto.reset()
    db.dispose_engines()


@pytest.fixture(scope="session")
def _migrated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One migrated, empty database per backend, made once a session and copied for each
    test (a PostgreSQL template database, an SQLite file): the migrations run once, not
    hundreds of times."""
    made: dict[str, str] = {}
    yield made
    if "postgres" in made:
        services.drop_pg_database(made["postgres"])


def _template(backend: str, made: dict[str, str], factory: pytest.TempPathFactory) -> str:
    from tenancy import db
    from tenancy.migrate import upgrade

    if backend not in made:
        saved = {k: os.environ.get(k) for k in ("ORBIN_HOME", "ORBIN_DATABASE_URL")}
        where = factory.mktemp(f"template-{backend}")
        if backend == "postgres":
            name = services.create_pg_database("orbin_tpl")
            url = services.pg_url(name)
        else:
            name = str(where / "orbin.db")
            url = f"sqlite:///{name}"
        try:
            _configure(where / "home", url)
            upgrade()
        finally:
            db.dispose_engines()  # a template database may have no open connection
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        made[backend] = name
    return made[backend]


@pytest.fixture(params=["sqlite", "postgres"])
def database(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    _migrated: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A migrated, empty Orbin database; the settings point at it for the test."""
    from tenancy import config, db

    saved = {k: os.environ.get(k) for k in ("ORBIN_HOME", "ORBIN_DATABASE_URL")}
    name = None
    if request.param == "postgres":
        require_postgres()
        name = services.create_pg_database(
            template=_template("postgres", _migrated, tmp_path_factory)
        )
        url = services.pg_url(name)
    else:
        template = _template("sqlite", _migrated, tmp_path_factory)
        shutil.copyfile(template, tmp_path / "orbin.db")
        url = f"sqlite:///{tmp_path / 'orbin.db'}"
    _configure(tmp_path / "home", url)
    from tenancy.identity import throttle

    throttle.reset()  # sign-in attempts are counted afresh with each new database
    try:
        yield url
    finally:
        db.dispose_engines()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        config.reset_settings()
        if name:
            services.drop_pg_database(name)


@dataclass
class OrgWithKey:
    id: str
    slug: str
    key: str


@pytest.fixture
def make_org(database: str):
    """make_org(slug, plan="free", key_type="secret") -> OrgWithKey."""
    from tenancy.db import session_scope
    from tenancy.keys import create_api_key
    from tenancy.orgs import create_organization

    def make(
        slug: str, plan: str = "free", key_type: str = "secret", permissions=None
    ) -> OrgWithKey:
        with session_scope() as session:
            org = create_organization(session, name=slug.title(), slug=slug, plan=plan)
            key = create_api_key(
                session, organization_id=org.id, name="test", type=key_type, permissions=permissions
            )
            return OrgWithKey(org.id, org.slug, key.plaintext)

    return make


@pytest.fixture
def api(database: str):
    """The API in-process (no Prefect needed: ingestion never waits on it)."""
    from fastapi.testclient import TestClient

    from ingest_api import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client


# --- the whole platform (`orbin up`), once per backend and test session --------------------
# Shared by tests/integration and tests/e2e, so a run of both starts each platform once.


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
