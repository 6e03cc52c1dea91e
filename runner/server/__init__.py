"""The tracking server: REST API over the store, artifacts, security middleware."""
