"""The Python API: runner.run(...) -> Run with wait, status, cancel."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import runner
from runner.errors import ParameterError
from runner.status import RunStatus
from tests.helpers import write_project

HELLO = Path(__file__).resolve().parents[2] / "sample_projects" / "hello"


def test_synchronous_run_returns_a_finished_run(capfd: pytest.CaptureFixture[str]) -> None:
    run = runner.run(str(HELLO), parameters={"name": "api", "excitement": 2})
    assert run.status() is RunStatus.FINISHED
    assert run.wait() is True
    record = run.record()
    assert record["parameters"] == {"name": "api", "excitement": "2"}
    assert "Hello, api!!" in capfd.readouterr().out


def test_failed_run_does_not_raise(tmp_path: Path) -> None:
    proj = write_project(
        tmp_path / "p",
        {
            "MLproject": """
        entry_points:
          main: {command: "exit 4"}
    """
        },
    )
    run = runner.run(str(proj))
    assert run.wait() is False
    assert run.record()["exit_code"] == 4


def test_validation_errors_raise_before_a_run_exists() -> None:
    with pytest.raises(ParameterError, match="parameter 'excitement': expected float"):
        runner.run(str(HELLO), parameters={"excitement": "lots"})


def test_asynchronous_run_can_be_waited_for_and_cancelled(tmp_path: Path) -> None:
    proj = write_project(
        tmp_path / "p",
        {
            "MLproject": """
        entry_points:
          main:
            parameters: {seconds: int}
            command: "sleep {seconds}"
    """
        },
    )
    quick = runner.run(str(proj), parameters={"seconds": 1}, synchronous=False)
    slow = runner.run(str(proj), parameters={"seconds": 60}, synchronous=False)
    started = time.monotonic()
    while slow.status() is not RunStatus.RUNNING and time.monotonic() - started < 20:
        time.sleep(0.1)
    slow.cancel()
    assert slow.wait(timeout=30) is False
    assert slow.status() is RunStatus.KILLED
    assert quick.wait(timeout=30) is True
    slow.cancel()  # harmless after the end
