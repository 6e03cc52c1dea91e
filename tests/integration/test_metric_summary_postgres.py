"""The store's metric buckets (the web UI's charts) again, on a real PostgreSQL server."""

from __future__ import annotations

from tests.integration.test_store_postgres import database_url, postgres_url, store
from tests.unit.test_ui_parts import (
    test_a_key_with_no_points_has_no_buckets,
    test_a_long_series_is_drawn_from_its_buckets_spike_included,
    test_buckets_keep_every_point_and_every_extreme,
)

__all__ = [
    "database_url",
    "postgres_url",
    "store",
    "test_a_key_with_no_points_has_no_buckets",
    "test_a_long_series_is_drawn_from_its_buckets_spike_included",
    "test_buckets_keep_every_point_and_every_extreme",
]
