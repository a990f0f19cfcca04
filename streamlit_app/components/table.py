"""A plain HTML table for lists of records: drawn at once, without the data-grid bundle that
``st.dataframe`` loads and paints on a canvas (the dashboard's pages stay quick to open)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any


def table_html(rows: Sequence[Mapping[str, Any]], *, css_class: str = "orbin-table") -> str:
    """Every cell escaped; the first row's keys are the columns."""
    if not rows:
        return ""
    columns = list(rows[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in columns) + "</tr>"
        for r in rows
    )
    return (
        f'<table class="orbin-runs {html.escape(css_class, quote=True)}"><thead><tr>{head}</tr>'
        f"</thead><tbody>{body}</tbody></table>"
    )
