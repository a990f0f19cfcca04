"""Operating Orbin: Prometheus metrics, OpenTelemetry traces, structured logs.

The bottom layer beside ``tenancy``: it imports no other Orbin package, so the API, the
worker and the service layer can all record into it.
"""
