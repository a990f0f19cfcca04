"""suspended runs; no platform traces in stored errors

A run waiting out a long delay was ``running`` with a resume time and no worker: it is
``suspended`` now. Errors recorded before carried the worker's Python traceback (file paths
of the platform) in ``stack``, and a python step's message the sandbox runner's frames: the
stacks are dropped and only the snippet's own frames (``File "<step>"``) stay in messages.

Revision ID: 0017_suspended_runs
Revises: 0016_actors (re-chained in numeric order when merged with branch api10)
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017_suspended_runs"
down_revision: str | None = "0016_actors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
# A traceback frame that is not the snippet's, with its source and caret lines.
_FRAME = re.compile(r'^  File "(?!<step>")[^"\n]*", line \d+.*\n(?:    .*\n)*', re.MULTILINE)
_BATCH = 500


def _public(error: dict) -> dict:
    out = {k: v for k, v in error.items() if k != "stack"}
    if isinstance(out.get("message"), str) and 'File "' in out["message"]:
        out["message"] = _FRAME.sub("", out["message"] + "\n").rstrip("\n")
    return out


def _scrub(table: str) -> None:
    bind = op.get_bind()
    t = sa.table(table, sa.column("id", sa.String), sa.column("error", _JSON))
    text = sa.cast(t.c.error, sa.Text)
    last = ""
    while True:
        rows = bind.execute(
            sa.select(t.c.id, t.c.error)
            .where(t.c.id > last, sa.or_(text.like('%"stack"%'), text.like("%File %")))
            .order_by(t.c.id)
            .limit(_BATCH)
        ).all()
        for row_id, error in rows:
            if isinstance(error, dict):
                public = _public(error)
                if public != error:
                    bind.execute(sa.update(t).where(t.c.id == row_id).values(error=public))
        if len(rows) < _BATCH:
            return
        last = rows[-1][0]


def upgrade() -> None:
    op.execute(
        "UPDATE workflow_runs SET status = 'suspended' WHERE status = 'running' "
        "AND resume_at IS NOT NULL AND worker_id IS NULL"
    )
    _scrub("step_executions")
    _scrub("workflow_runs")


def downgrade() -> None:
    op.execute("UPDATE workflow_runs SET status = 'running' WHERE status = 'suspended'")
    op.execute("UPDATE step_executions SET status = 'failed' WHERE status = 'canceled'")
