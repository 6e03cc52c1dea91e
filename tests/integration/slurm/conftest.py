"""Fixtures for the Slurm backend tests: a real one-node cluster, once without accounting and
once with slurmdbd on MariaDB, so every test here runs against both state paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.slurm_cluster import ClusterUnavailable, SlurmCluster, slurm_cluster


@pytest.fixture(scope="session", params=["no-accounting", "accounting"])
def cluster(request: pytest.FixtureRequest) -> Iterator[SlurmCluster]:
    try:
        with slurm_cluster(accounting=request.param == "accounting") as running:
            yield running
    except ClusterUnavailable as exc:
        if os.environ.get("CI"):  # CI installs the packages: a cluster that fails is a failure
            raise
        pytest.skip(f"no Slurm cluster here: {exc}")


@pytest.fixture
def slurm(cluster: SlurmCluster, monkeypatch: pytest.MonkeyPatch) -> SlurmCluster:
    """The cluster, with this process and the CLI processes it starts pointed at it."""
    from backends.slurm import client, watch

    for key, value in cluster.env.items():
        monkeypatch.setenv(key, value)
    client.accounting_enabled.cache_clear()  # a cluster of the other kind may have run before
    monkeypatch.setattr(watch, "_WATCHER", None)  # job ids start at 1 again on a new cluster
    return cluster


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """An empty slurm.yaml the tests fill in."""
    return tmp_path / "slurm.yaml"
