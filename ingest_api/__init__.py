"""Orbin's HTTP API: event ingestion and the REST resources, over the service layer."""

from ingest_api.app import create_app

__all__ = ["create_app"]
