"""Apply Alembic migrations on start; safe when several processes start at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from tenancy.db import get_engine

_MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 7_311_041  # arbitrary, constant: the advisory lock key for migrations


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url or get_engine().url.render_as_string(False))
    return cfg


def upgrade(url: str | None = None) -> None:
    engine = get_engine(url)
    cfg = alembic_config(url)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_ID})
            conn.commit()
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_ID})
                conn.commit()
