"""Identity and access: accounts, sign-in sessions, MFA, members, invitations, notifications.

Every function takes the caller's SQLAlchemy session (the unit of work) and, where it acts
inside an organization, the caller's ``Principal``: roles are checked here, not in adapters.
"""
