"""`-c` takes inline JSON, a .json or a .yaml file; `--dry-run` needs a backend that renders."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import RunnerError, SpecError
from runner.execution.plan import parse_backend_config
from tests.helpers import run_cli, write_project


def test_a_yaml_file_gives_the_same_config_as_json(tmp_path: Path) -> None:
    path = tmp_path / "k8s.yaml"
    path.write_text("namespace: ml\nresources: {cpu: '2', gpu: 1}\nretries: 2\ntimeout: 10m\n")
    assert parse_backend_config(str(path)) == parse_backend_config(
        '{"namespace": "ml", "resources": {"cpu": "2", "gpu": 1}, "retries": 2, "timeout": "10m"}'
    )


def test_a_yaml_file_with_duplicate_keys_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k8s.yml"
    path.write_text("namespace: a\nnamespace: b\n")
    with pytest.raises(SpecError) as refused:
        parse_backend_config(str(path))
    assert "duplicate key 'namespace'" in refused.value.message


def test_a_yaml_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k8s.yaml"
    path.write_text("- namespace\n")
    with pytest.raises(RunnerError) as refused:
        parse_backend_config(str(path))
    assert refused.value.message == f"backend config {path} must be a YAML mapping"


def test_dry_run_on_a_backend_without_manifests_says_so(tmp_path: Path) -> None:
    proj = write_project(
        tmp_path / "p", {"MLproject": "name: p\nentry_points:\n  main:\n    command: 'true'\n"}
    )
    result = run_cli("run", str(proj), "--dry-run")
    assert result.returncode == 2
    assert "backend 'local' has nothing to show for --dry-run" in result.stderr
    listed = run_cli("runs", "list", "--json")
    assert listed.stdout.strip() == "[]"
