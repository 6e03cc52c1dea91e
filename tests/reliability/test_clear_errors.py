"""Bad bytes on the command line, an unusable RUNNER_HOME, an MLproject that is no file: one
clear message each, through the real CLI, never a traceback."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import records, run_cli, write_project

BAD = os.fsdecode(b"\xff")  # what Python (and so click) makes of the byte 0xff in argv
TEXT_HINT = "runner records it as text; check the terminal's locale (LANG, LC_ALL)"
HOME_HINT = (
    "runner keeps its store, environments and logs there: point RUNNER_HOME at a writable "
    "directory (the default is ~/.runner)"
)
LINK_HINT = "runner reads only files inside the project; copy the file into the project"
GREET = "entry_points:\n  main:\n    parameters:\n      name: string\n    command: echo {name}\n"


def assert_clean(result: subprocess.CompletedProcess[str], code: int, stderr: str) -> None:
    assert (result.returncode, result.stdout, result.stderr) == (code, "", stderr)
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr


@pytest.fixture
def greet(tmp_path: Path) -> Path:
    return write_project(tmp_path / "greet", {"MLproject": GREET})


# --- text that is not UTF-8 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-P", f"name=a{BAD}"], "the value of -P name is not valid UTF-8: 'a\\xff'"),
        (["-P", f"n{BAD}=1"], "a -P parameter name is not valid UTF-8: 'n\\xff'"),
        (["--run-name", f"run{BAD}", "-P", "name=x"], "--run-name is not valid UTF-8: 'run\\xff'"),
        (["--experiment-name", BAD], "--experiment-name is not valid UTF-8: '\\xff'"),
        (["-e", f"t{BAD}.py"], "the entry point (-e) is not valid UTF-8: 't\\xff.py'"),
    ],
)
def test_non_utf8_arguments_are_refused_before_a_run_exists(
    greet: Path, args: list[str], message: str
) -> None:
    result = run_cli("run", str(greet), *args)
    assert_clean(result, 2, f"error: {message}\nhint: {TEXT_HINT}\n")
    assert records() == []


def test_a_non_utf8_experiment_from_the_environment(greet: Path) -> None:
    result = run_cli("run", str(greet), "-P", "name=x", env={"RUNNER_EXPERIMENT_NAME": BAD})
    message = "--experiment-name is not valid UTF-8: '\\xff'"
    assert_clean(result, 2, f"error: {message}\nhint: {TEXT_HINT}\n")
    assert records() == []


def test_a_non_utf8_project_path(tmp_path: Path) -> None:
    project = write_project(tmp_path / f"p{BAD}", {"MLproject": GREET})
    result = run_cli("run", str(project), "-P", "name=x")
    message = f"the project URI is not valid UTF-8: '{tmp_path}/p\\xff'"
    assert_clean(result, 2, f"error: {message}\nhint: {TEXT_HINT}\n")


# --- RUNNER_HOME ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["run", "PROJECT", "-P", "name=x"], ["runs", "list"]])
def test_runner_home_that_is_a_file(tmp_path: Path, greet: Path, command: list[str]) -> None:
    home = tmp_path / "home"
    home.write_text("")
    args = [str(greet) if arg == "PROJECT" else arg for arg in command]
    result = run_cli(*args, env={"RUNNER_HOME": str(home)})
    assert_clean(
        result, 1, f"error: RUNNER_HOME {home} is a file, not a directory\nhint: {HOME_HINT}\n"
    )


def test_runner_home_below_a_file(tmp_path: Path, greet: Path) -> None:
    (tmp_path / "file").write_text("")
    home = tmp_path / "file" / "home"
    result = run_cli("run", str(greet), "-P", "name=x", env={"RUNNER_HOME": str(home)})
    problem = "cannot be created: Not a directory"
    assert_clean(result, 1, f"error: RUNNER_HOME {home} {problem}\nhint: {HOME_HINT}\n")


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of our own holding an empty ``home`` dir, remounted read-only."""
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        (mount / "home").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("home", "is on a read-only file system"),
        ("new-home", "cannot be created: Read-only file system"),
    ],
)
def test_runner_home_on_a_read_only_file_system(
    read_only: Path, greet: Path, name: str, problem: str
) -> None:
    home = read_only / name
    result = run_cli("run", str(greet), "-P", "name=x", env={"RUNNER_HOME": str(home)})
    assert_clean(result, 1, f"error: RUNNER_HOME {home} {problem}\nhint: {HOME_HINT}\n")


# --- an MLproject that is not a file ----------------------------------------------------------


def refusal(project: Path) -> str:
    """What ``runner run`` said refusing ``project`` (exit 1, no output, no run, no traceback)."""
    result = run_cli("run", str(project), timeout=60)  # a blocking read would time out here
    assert_clean(result, 1, result.stderr)
    assert records() == []
    return result.stderr


def test_an_mlproject_directory(tmp_path: Path) -> None:
    (tmp_path / "p" / "MLproject").mkdir(parents=True)
    assert refusal(tmp_path / "p") == "error: MLproject is a directory, not a file: refused\n"


def test_an_mlproject_fifo_is_never_opened_for_a_blocking_read(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    os.mkfifo(tmp_path / "p" / "MLproject")
    assert (
        refusal(tmp_path / "p") == "error: MLproject is a named pipe (FIFO), not a file: refused\n"
    )


def test_an_mlproject_linked_to_a_device(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "MLproject").symlink_to("/dev/zero")
    message = "MLproject is a link to /dev/zero, outside the project: refused"
    assert refusal(tmp_path / "p") == f"error: {message}\nhint: {LINK_HINT}\n"


def test_an_mlproject_that_is_a_device_is_never_read(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    try:  # /dev/zero itself, inside the project: an endless read if anything read it
        os.mknod(tmp_path / "p" / "MLproject", stat.S_IFCHR | 0o644, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("creating a device node is not permitted here")
    assert (
        refusal(tmp_path / "p") == "error: MLproject is a character device, not a file: refused\n"
    )


def test_a_python_package_named_mlproject_is_not_the_mlproject(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "p", {"mlproject/__init__.py": "", "train.py": "print('trained')\n"}
    )
    result = run_cli("run", str(project), "-e", "train.py", "--env-manager", "local")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "trained\n"


def test_a_lock_that_is_a_fifo_fails_the_run_with_one_message(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "p",
        {"MLproject": f"python_env: python_env.yaml\n{GREET}", "python_env.yaml": "python: '3'\n"},
    )
    os.mkfifo(project / "runner.lock")
    result = run_cli("run", str(project), "-P", "name=x", timeout=60)
    message = "runner.lock is a named pipe (FIFO), not a file: refused"
    assert result.returncode == 1 and result.stderr.endswith(f"error: {message}\n")
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr
    [run] = records()
    assert (run["status"], run["failure_reason"]) == ("FAILED", message)
