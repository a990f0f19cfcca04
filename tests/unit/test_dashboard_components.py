"""The dashboard's small pieces: times and status badges."""

from __future__ import annotations

import re

from streamlit_app.components import formatting
from streamlit_app.components.runs_table import runs_table_html
from streamlit_app.components.status import badge_html
from streamlit_app.components.text import md
from streamlit_app.data import RunRow

NOW = 1_800_000_000_000


def test_durations_and_relative_times_read_naturally() -> None:
    assert formatting.duration(None) == "—"
    assert formatting.duration(850) == "850 ms"
    assert formatting.duration(12_340) == "12.3 s"
    assert formatting.duration(125_000) == "2 min 5 s"
    assert formatting.duration(3 * 86400_000 + 7200_000) == "3 d 2 h"
    assert formatting.relative(NOW - 2_000, NOW) == "just now"
    assert formatting.relative(NOW - 42_000, NOW) == "42 s ago"
    assert formatting.relative(NOW - 3 * 3600_000, NOW) == "3 h ago"
    assert formatting.until(NOW + 4_200, NOW) == "in 5 s"
    assert formatting.until(NOW - 10, NOW) == "now"
    assert formatting.clock(0, "Europe/Berlin") == "1970-01-01 01:00:00 CET"
    assert formatting.clock(0, "Not/AZone") == "1970-01-01 00:00:00 UTC"


def test_status_badges_use_the_prd_colours() -> None:
    assert "background:#dcfce7;color:#15803d" in badge_html("completed")
    assert "background:#fee2e2;color:#b91c1c" in badge_html("failed")
    assert "animation" in badge_html("running") and "animation" not in badge_html("failed")
    assert badge_html("<script>").count("<script>") == 0


def test_every_run_and_step_status_has_its_own_badge() -> None:
    from tenancy.runs import RUN_STATUSES
    from tenancy.steps import STEP_STATUSES

    for status in (*RUN_STATUSES, *STEP_STATUSES):
        assert "Unknown" not in badge_html(status), status
    assert "Suspended" in badge_html("suspended") and "Canceled" in badge_html("canceled")


def test_runs_table_links_every_run_and_escapes_names() -> None:
    rows = [
        RunRow("r-2", "running", "<b>Sync</b>", "event", NOW - 9000, NOW - 8000, None, None),
        RunRow("r-1", "completed", "Hello", "manual", NOW - 60_000, NOW - 60_000, NOW, 1234),
    ]
    table = runs_table_html(rows, NOW)
    assert table.count('href="/run?id=r-2"') == 6 and table.count('href="/run?id=r-1"') == 6
    assert "&lt;b&gt;Sync&lt;/b&gt;" in table and "<b>Sync" not in table
    assert table.index('data-run-id="r-2"') < table.index('data-run-id="r-1"')
    assert "8.0 s …" in table and "1.2 s" in table and "1 min ago" in table


def test_user_text_stays_literal_in_markdown() -> None:
    hostile = "![p](http://x.example/p.png) <img src=x> $x^2$ :material/home: [a](b) **b**"
    escaped = md(hostile)
    assert re.findall(r"(?<!\\)[\[\]()!$*:`_<>]", escaped) == [], escaped
    assert md("Nightly sync 2") == "Nightly sync 2"
    assert md('it\'s "ok"') == 'it\'s "ok"'  # no &#x27; shown to the reader
