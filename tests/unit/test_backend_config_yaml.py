"""`-c` takes a YAML file too (the Slurm backend's slurm.yaml), loaded with the safe loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.errors import RunnerError, SpecError
from runner.execution.plan import parse_backend_config


def test_a_yaml_file_is_read_as_the_config(tmp_path: Path) -> None:
    config = tmp_path / "slurm.yaml"
    config.write_text("partition: gpu\ntime: '1-00:00:00'\ngpus: 2\nextra_args: [--exclusive]\n")
    assert parse_backend_config(str(config)) == {
        "partition": "gpu",
        "time": "1-00:00:00",
        "gpus": 2,
        "extra_args": ["--exclusive"],
    }


def test_a_yaml_file_that_is_no_mapping_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "slurm.yml"
    config.write_text("- partition\n")
    with pytest.raises(RunnerError) as caught:
        parse_backend_config(str(config))
    assert caught.value.message == "backend config slurm.yml must be a mapping of keys to values"


def test_duplicate_keys_in_a_yaml_config_are_an_error(tmp_path: Path) -> None:
    config = tmp_path / "slurm.yaml"
    config.write_text("time: 10\ntime: 20\n")
    with pytest.raises(SpecError) as caught:
        parse_backend_config(str(config))
    assert "duplicate key" in caught.value.message and "slurm.yaml" in caught.value.message
