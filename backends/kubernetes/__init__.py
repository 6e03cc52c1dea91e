"""The Kubernetes Job backend (imports the official client lazily)."""
