"""The ``orbin`` command: run the platform, and operate it."""
