"""Kubernetes runs refused before a run exists, each message saying what to fix (no cluster)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import records, run_cli, write_project


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    mlproject = (
        "name: p\ndocker_env: {image: 'busybox:1'}\nentry_points:\n  main:\n    command: 'true'\n"
    )
    return write_project(tmp_path / "p", {"MLproject": mlproject})


def _refused(proj: Path, config: dict[str, object]) -> str:
    result = run_cli("run", str(proj), "-b", "kubernetes", "-c", json.dumps(config))
    assert result.returncode == 1
    assert records() == []
    return result.stderr


def test_no_repository_uri(proj: Path) -> None:
    stderr = _refused(proj, {"tracking-uri": "http://tracking.internal:5005"})
    assert "the kubernetes backend needs repository-uri" in stderr
    assert '"repository-uri": "registry.example.com/team/project"' in stderr


def test_an_unreadable_kubeconfig(proj: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    config = {
        "repository-uri": "registry.internal/p",
        "tracking-uri": "http://tracking.internal:5005",
        "kubeconfig": str(missing),
    }
    stderr = _refused(proj, config)
    assert "cannot load the Kubernetes config:" in stderr
    assert "kubectl config get-contexts" in stderr


def test_an_unknown_key(proj: Path) -> None:
    stderr = _refused(proj, {"repository-uri": "r/p", "retires": 2})
    assert "invalid backend config for 'kubernetes'" in stderr
    assert "'retires' was unexpected" in stderr


def test_the_store_as_tracking_uri_when_none_is_given(proj: Path) -> None:
    stderr = _refused(proj, {"repository-uri": "registry.internal/p"})
    assert "pods cannot log to the tracking store (RUNNER_TRACKING_URI) 'sqlite:" in stderr
    assert "a pod needs an http(s) tracking server" in stderr
