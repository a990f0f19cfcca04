"""Where user code runs: a bubblewrap sandbox per python step (see ``bwrap``), whose only
way out is a per-step proxy that applies the egress policy (``tenancy.egress.proxy``)."""

from orbin_flows.sandbox.bwrap import SandboxUnavailable, python_process, require

__all__ = ["SandboxUnavailable", "python_process", "require"]
