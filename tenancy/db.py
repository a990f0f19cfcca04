"""Engines and sessions for Orbin's own database (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import JSON, Connection, Engine, MetaData, create_engine, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DisconnectionError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from tenancy.config import get_settings
from tenancy.errors import Conflict

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")


# PostgreSQL's json/jsonb cannot hold the NUL character (psycopg: "unsupported Unicode escape
# sequence"): a step's output may (a python step reading /proc, an HTTP answer). Stored as
# U+FFFD instead, never a failed run or a 500. Input at the API's edge is refused (422).
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def json_dumps_storable(value: object) -> str:
    text = json.dumps(value)
    if "\\u0000" in text:
        text = _NUL_ESCAPE.sub(r"\1\\ufffd", text)
    return text


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


READ_ONLY = "orbin_read_only"
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Autocommit at the driver level so that SQLAlchemy's BEGIN below is the only one.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads, then writes, fails
        # with SQLITE_BUSY_SNAPSHOT under concurrent writers whatever the busy timeout.
        # A read-only unit of work (read_scope) never writes: it reads a snapshot without
        # the lock, so pages and live tails do not queue behind the writers.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN DEFERRED")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


_PING_AFTER_IDLE_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only if it sat idle a while.

    ``pool_pre_ping`` costs a round trip on every checkout, a quarter of a small ingest
    transaction; a connection used moments ago is alive. A connection that dies anyway
    fails its statement, and SQLAlchemy then drops the pool's connections.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["orbin_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("orbin_idle_since")
        if since is None or time.monotonic() - since < _PING_AFTER_IDLE_SECONDS:
            return
        try:
            cur = dbapi_conn.cursor()
            cur.execute("SELECT 1")
            cur.close()
            dbapi_conn.rollback()
        except Exception as exc:
            raise DisconnectionError("stale pooled connection") from exc


def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().resolved_database_url
    with _lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                from pathlib import Path

                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            _configure_sqlite(engine)
        else:
            engine = create_engine(
                url,
                pool_size=20,
                max_overflow=20,
                pool_recycle=1800,
                json_serializer=json_dumps_storable,
            )
            _ping_when_idle(engine)
        _engines[url] = engine
        return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


_factories: dict[int, sessionmaker[Session]] = {}


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    engine = engine or get_engine()
    factory = _factories.get(id(engine))
    if factory is None:
        factory = sessionmaker(engine, expire_on_commit=False)
        _factories[id(engine)] = factory
    return factory


@contextmanager
def session_scope(engine: Engine | Connection | None = None) -> Iterator[Session]:
    """One unit of work: commits when the block succeeds, rolls back when it raises.

    ``engine`` may be a connection the caller keeps (it is not closed here).
    """
    session = (
        Session(engine, expire_on_commit=False)
        if isinstance(engine, Connection)
        else session_factory(engine)()
    )
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def read_scope() -> Iterator[Session]:
    """A unit of work that only reads (never commits): on SQLite it takes no write lock."""
    session = Session(get_engine().execution_options(**{READ_ONLY: True}), expire_on_commit=False)
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def ping(engine: Engine | None = None) -> None:
    with (engine or get_engine()).connect() as conn:
        conn.execute(text("SELECT 1"))


# The database itself failed (down, restarting, connection lost), not the request.
DATABASE_DOWN = (OperationalError, InterfaceError)
DatabaseUnavailable = OperationalError

_autocommit: dict[int, Engine] = {}


def single_statement_engine() -> Engine:
    """An engine for statements that are atomic on their own (autocommit on PostgreSQL)."""
    engine = get_engine()
    if engine.dialect.name != "postgresql":
        return engine  # a local file: BEGIN and COMMIT cost no round trip
    option = _autocommit.get(id(engine))
    if option is None:
        option = _autocommit.setdefault(
            id(engine), engine.execution_options(isolation_level="AUTOCOMMIT")
        )
    return option


class AutocommitConnection:
    """One autocommit connection of a caller's own to the current database (PostgreSQL only)."""

    def __init__(self) -> None:
        self._conn: Connection | None = None

    def get(self) -> Connection | None:
        engine = get_engine()
        if engine.dialect.name != "postgresql":
            return None
        conn = self._conn
        if conn is not None and (conn.engine is not engine or conn.invalidated or conn.closed):
            conn.close()
            conn = self._conn = None
        if conn is None:
            conn = self._conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return conn

    def drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass
            self._conn = None


def flush_unique(session: Session, conflict: str, *new: Any) -> None:
    """Add ``new`` and flush in a savepoint: a unique row it would duplicate is a Conflict
    with this message, and the transaction stays usable."""
    try:
        with session.begin_nested():
            session.add_all(new)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(conflict) from exc


def delete_oldest(session: Session, model: Any, *where: Any, batch: int) -> int:
    """Delete up to ``batch`` rows of ``model`` matching ``where``, lowest ids first; two
    deleters at once take different rows on PostgreSQL (the ids are read FOR UPDATE SKIP
    LOCKED). Returns how many went."""
    from sqlalchemy import delete, select

    q = select(model.id).where(*where).order_by(model.id).limit(batch)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    ids = list(session.scalars(q))
    if ids:
        session.execute(delete(model).where(model.id.in_(ids)))
    return len(ids)
