"""Typed values are what they claim, through the real CLI: an int is ASCII digits (not '١٢٣'),
a float is finite (not 1e999), refused before a run exists with the same message as any other
bad value (issue 9, item 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import records, run_cli, write_project

MLPROJECT = """
entry_points:
  main:
    parameters: {n: int, lr: float}
    command: "echo {n} {lr}"
"""


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("n=\u0661\u0662\u0663", "parameter 'n': expected int, got '\u0661\u0662\u0663'"),
        ("lr=1e999", "parameter 'lr': expected float, got '1e999'"),
        ("lr=-1e400", "parameter 'lr': expected float, got '-1e400'"),
    ],
)
def test_a_value_that_only_looks_typed_is_refused(tmp_path: Path, given: str, message: str) -> None:
    project = write_project(tmp_path / "p", {"MLproject": MLPROJECT})
    others = {"n": "n=1", "lr": "lr=0.5"}
    args = [value for key, value in others.items() if not given.startswith(key + "=")]
    result = run_cli("run", str(project), "-P", given, *(f"-P{a}" for a in args))
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    assert records() == []


def test_plain_typed_values_still_run(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", {"MLproject": MLPROJECT})
    result = run_cli("run", str(project), "-P", "n=-12", "-P", "lr=2.5e-3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "-12 2.5e-3"
