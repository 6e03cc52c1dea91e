"""A disk that fills during a run: the run ends with the true reason, output still shows."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import run_cli, write_project

FILL_THEN_TALK = """
    import os

    fd = os.open(os.path.join(os.environ["RUNNER_HOME"], "fill"), os.O_WRONLY | os.O_CREAT)
    for size in (65536, 4096, 512, 1):  # to the last byte
        try:
            while os.write(fd, b"x" * size):
                pass
        except OSError:
            pass
    os.close(fd)
    for i in range(3000):
        print(f"line {i} of what the entry point says", flush=True)
    print("END-OF-OUTPUT", flush=True)
"""
REASON = "disk full while writing output.log (entry point exited with code 0)"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MB filesystem (tmpfs), unmounted afterwards."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def _project(tmp_path: Path) -> Path:
    mlproject = """
        name: t
        entry_points:
          main:
            command: "python3 fill.py"
    """
    return write_project(tmp_path / "proj", {"MLproject": mlproject, "fill.py": FILL_THEN_TALK})


def _run_on(home: Path, project: Path, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {"RUNNER_HOME": str(home), **extra}
    result = run_cli("run", str(project), env=env)
    (home / "fill").unlink()  # room again, so the record can be read back
    return result


def _record(home: Path, extra: dict[str, str]) -> dict[str, object]:
    shown = run_cli("runs", "list", "--json", env={"RUNNER_HOME": str(home), **extra})
    assert shown.returncode == 0, shown.stderr
    [record] = json.loads(shown.stdout)
    return dict(record)


def _ended_reason(result: subprocess.CompletedProcess[str], record: dict) -> object:  # type: ignore[type-arg]
    """The recorded failure reason, once the run is shown to have ended as it told the user."""
    assert result.returncode == 1
    assert "END-OF-OUTPUT" in result.stdout  # every line still reached the terminal
    assert len(result.stdout.splitlines()) == 3001
    assert "Traceback" not in result.stderr
    assert re.search(
        rf"^runner: run \w+ FAILED in [\d.]+s \({re.escape(REASON)}\)$", result.stderr, re.M
    )
    assert (record["status"], record["exit_code"]) == ("FAILED", 0)
    return record["failure_reason"]


def test_runner_home_on_a_full_disk(small_disk: Path, tmp_path: Path) -> None:
    home = small_disk / "home"
    result = _run_on(home, _project(tmp_path), {})
    # not "runner died": it said why, before exiting
    assert _ended_reason(result, _record(home, {})) == REASON
    assert not list(home.glob(".reserve-*"))  # the reserve never outlives its run


def test_log_on_a_full_disk_and_the_store_elsewhere(small_disk: Path, tmp_path: Path) -> None:
    home = small_disk / "home"
    elsewhere = {"RUNNER_TRACKING_URI": f"sqlite:///{tmp_path / 'store.db'}"}
    result = _run_on(home, _project(tmp_path), elsewhere)
    assert _ended_reason(result, _record(home, elsewhere)) == REASON
