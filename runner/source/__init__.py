"""Fetching projects: local folders, git repositories, zip archives, and their provenance."""
