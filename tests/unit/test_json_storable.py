"""JSON holding a NUL character (a step's output: /proc files, HTTP answers) is stored on
both backends: as U+FFFD on PostgreSQL, which cannot hold NUL in json/jsonb."""

from __future__ import annotations

import json

from tenancy import events as events_repo
from tenancy.db import json_dumps_storable, session_scope
from tenancy.models import Event


def test_the_serializer_replaces_only_real_nul_escapes() -> None:
    assert json.loads(json_dumps_storable({"a\x00": "x\x00y"})) == {"a\ufffd": "x\ufffdy"}
    literal = {"t": "\\u0000 and \\\\u0000"}  # backslashes, not NUL
    assert json.loads(json_dumps_storable(literal)) == literal
    assert json.loads(json_dumps_storable({"t": "\\\x00"})) == {"t": "\\\ufffd"}


def test_a_nul_in_json_is_stored(database, make_org) -> None:
    org = make_org("nul")
    with session_scope() as session:
        event, _ = events_repo.insert_event(
            session,
            organization_id=org.id,
            event_type="t",
            source="test",
            payload={"cmdline": "/usr/bin/bwrap\x00--\x00", "n": 1},
            event_id=None,
        )
        pk = event.id
    with session_scope() as session:
        payload = session.get(Event, pk).payload
    assert payload["n"] == 1 and payload["cmdline"].startswith("/usr/bin/bwrap")
    assert payload["cmdline"].replace("\ufffd", "\x00") == "/usr/bin/bwrap\x00--\x00"
