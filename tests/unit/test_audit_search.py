"""Audit search filters, at the service layer (the HTTP routes are in test_identity_api)."""

from __future__ import annotations


def test_an_audit_action_prefix_is_matched_literally(database, make_org):
    """`member_*` matches actions starting with `member_`, not `memberX...` (LIKE's `_`)."""
    from tenancy.audit import record_audit, search_audit_logs
    from tenancy.db import session_scope
    from tenancy.principal import system_principal

    org = make_org("acme")
    p = system_principal(org.id, org.slug)
    with session_scope() as session:
        record_audit(session, p, "member_x.made", "thing", "1")
        record_audit(session, p, "memberXx.made", "thing", "2")
    with session_scope() as session:
        rows, _ = search_audit_logs(session, p, action="member_*")
        assert [r.action for r in rows] == ["member_x.made"]
