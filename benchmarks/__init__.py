"""Benchmarks that measure runner and MLflow on the same work, side by side."""
