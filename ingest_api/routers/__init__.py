"""HTTP routes, one module per resource; the use cases live in orbin_flows/ and tenancy/."""
