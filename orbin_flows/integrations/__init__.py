"""Integrations: the providers (webhook, Slack, GitHub), their calls through their own SDKs,
and the use cases behind ``/v1/integrations``. Credentials live encrypted in
tenancy/integrations.py; Prefect blocks in blocks/."""
