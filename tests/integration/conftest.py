"""Integration tests use the session platforms of tests/conftest.py (`platform_sqlite`,
`platform_pg`, `platform`): one `orbin up` per backend for the whole test session."""
