"""The Slurm backend's config checks and batch script, without a cluster: the script runs
under the real bash and under a lone POSIX sh (as in a container image), and hostile config
values are property-tested."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from backends.slurm.config import CONFIG_SCHEMA, check_config, sbatch_options
from backends.slurm.script import JobFiles, Task, job_name, render_job
from backends.slurm.state import JobState, exit_info
from runner.errors import BackendError
from runner.status import RunStatus


def _task(tmp_path: Path, command: str, env: dict[str, str] | None = None) -> Task:
    root = tmp_path / "job"
    root.mkdir(exist_ok=True)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return Task("r1", command, work, env or {}, JobFiles(root))


def _run_script(script: str, tmp_path: Path, restart: str | None = None) -> int:
    from backends.slurm.backend import _write_script

    path = tmp_path / "job.sh"
    _write_script(path, script)  # as the backend writes it
    env = {"PATH": os.environ["PATH"]}
    if restart is not None:
        env["SLURM_RESTART_COUNT"] = restart
    interpreter = script.splitlines()[0].removeprefix("#!")  # what Slurm runs it with
    return subprocess.run([interpreter, str(path)], env=env, timeout=30).returncode


def _valid(config: dict[str, Any]) -> bool:
    try:
        jsonschema.validate(config, CONFIG_SCHEMA)
        check_config(config)
    except (jsonschema.ValidationError, BackendError):
        return False
    return True


def test_the_script_runs_the_command_and_records_each_attempt(tmp_path: Path) -> None:
    task = _task(
        tmp_path, 'echo "out $RUNNER_RUN_ID"; echo err >&2; exit 3', {"RUNNER_RUN_ID": "r1"}
    )
    script = render_job(task, job_name("r1"), sbatch_options({}))
    assert _run_script(script, tmp_path) == 3
    assert _run_script(script, tmp_path, restart="1") == 3
    files = task.files
    assert files.output(0).read_text() == "out r1\n" == files.output(1).read_text()
    assert files.error(0).read_text() == "err\n"
    assert files.exit_status(0).read_text() == "3\n"
    assert files.attempts() == [0, 1] and files.last_exit() == 3


def test_a_node_that_cannot_see_the_environment_says_which_setting(tmp_path: Path) -> None:
    task = _task(tmp_path, "true")
    missing = Task(task.run_id, task.command, task.work_dir, {}, task.files, (tmp_path / "env",))
    script = render_job(missing, job_name("r1"), [])
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 97
    assert f"runner: the path {tmp_path / 'env'} is not visible on" in done.stderr
    assert "set RUNNER_SLURM_SHARED_DIR (or RUNNER_HOME) to a path the compute nodes share" in (
        done.stderr
    )
    reason = exit_info(JobState("7", "FAILED", "NonZeroExitCode", 97)).reason
    assert reason is not None and "RUNNER_SLURM_SHARED_DIR" in reason


BUSYBOX = Path("/bin/busybox")


@pytest.mark.skipif(not BUSYBOX.is_file(), reason="needs busybox (the busybox-static package)")
def test_the_script_runs_where_there_is_no_bash(tmp_path: Path) -> None:
    """A container image may have only a POSIX sh: the script runs there and so does the
    command, with ``sh -c`` ($0 says which shell ran it)."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for applet in ("sh", "cat", "mv", "printf", "hostname"):
        (tools / applet).symlink_to(BUSYBOX)
    task = _task(tmp_path, 'echo "ran by $0"; exit 4')
    path = tmp_path / "job.sh"
    path.write_text(render_job(task, job_name("r1"), []))
    assert path.read_text().startswith("#!/bin/sh\n")
    done = subprocess.run(
        [str(tools / "sh"), str(path)], env={"PATH": str(tools)}, capture_output=True, timeout=30
    )
    assert done.returncode == 4, done.stderr
    assert task.files.output(0).read_text() == "ran by sh\n"
    assert task.files.last_exit() == 4


def test_config_keys_become_sbatch_options() -> None:
    config = {
        "partition": "gpu",
        "account": "lab",
        "qos": "high",
        "time": "1-00:00:00",
        "cpus": 4,
        "memory": "8G",
        "gpus": 2,
        "nodes": 1,
        "constraint": "a100&ib",
        "requeue": True,
        "extra_args": ["--exclusive", "--mail-type=END"],
    }
    assert _valid(config)
    assert sbatch_options(config) == [
        "--partition=gpu",
        "--account=lab",
        "--qos=high",
        "--cpus-per-task=4",
        "--nodes=1",
        "--constraint=a100&ib",
        "--time=1-00:00:00",
        "--mem=8G",
        "--gpus=2",
        "--requeue",
        "--exclusive",
        "--mail-type=END",
    ]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"extra_args": ["--output=/etc/passwd"]}, "'--output=/etc/passwd' is not an allowed"),
        ({"extra_args": ["--wrap=id"]}, "'--wrap=id' is not an allowed sbatch option"),
        ({"extra_args": ["--mail-user=a b"]}, "the value of --mail-user may hold only"),
        ({"gpus": 1, "gres": "gpu:1"}, "set either gpus or gres, not both"),
        ({"partition": "debug\n"}, "slurm config: partition holds a line break"),
        ({"time": "10\n"}, "slurm config: time holds a line break or control character"),
        ({"extra_args": ["--nice=5\n"]}, "the value of --nice may hold only"),
    ],
)
def test_refused_configs_say_why(config: dict[str, Any], message: str) -> None:
    with pytest.raises(BackendError) as caught:
        check_config(config)
    assert message in caught.value.message


def test_refused_extra_args_name_the_allowlist() -> None:
    with pytest.raises(BackendError) as caught:
        check_config({"extra_args": ["--uid=0"]})
    assert caught.value.hint is not None and "--exclusive" in caught.value.hint


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(min_size=1, max_size=30),
    key=st.sampled_from(["partition", "account", "qos", "gres", "constraint", "container"]),
)
@example(value="debug\n", key="partition")  # found by this test: `$` matches before a "\n"
def test_no_config_value_ends_its_sbatch_line(value: str, key: str) -> None:
    """Whatever a value holds, an accepted config renders one plain token per #SBATCH line,
    so no value adds an option, a directive or a line of script."""
    config = {key: value}
    if not _valid(config):
        return
    header = [line for line in render_job(_task_fixed(), "n", sbatch_options(config)).splitlines()]
    options = [line for line in header if line.startswith("#SBATCH")]
    assert all(len(line.split()) == 2 for line in options), options
    assert options[-2] == f"#SBATCH {sbatch_options(config)[0]}"
    assert len(options) == 8  # the six runner sets, the value's, and --no-requeue


@settings(max_examples=300, deadline=None)
@given(item=st.text(max_size=40))
def test_only_allowlisted_extra_args_are_accepted(item: str) -> None:
    from backends.slurm.config import EXTRA_ARGS_ALLOWED

    name, _, value = item.partition("=")
    accepted = _valid({"extra_args": [item]})
    safe = all(char.isascii() and (char.isalnum() or char in "_.,:=@%/+-[]") for char in value)
    assert accepted == (name in EXTRA_ARGS_ALLOWED and safe)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(  # any text but NUL, and the surrogates Python decodes non-UTF-8 bytes to (the others
    # cannot come from an environment or an argument)
    value=st.text(
        alphabet=st.one_of(
            st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)),
            st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF),
        ),
        max_size=40,
    )
)
def test_run_variables_reach_the_job_intact(value: str, tmp_path: Path) -> None:
    task = _task(tmp_path, 'printf %s "$RUNNER_PROBE"', {"RUNNER_PROBE": value})
    assert _run_script(render_job(task, "n", []), tmp_path) == 0
    assert task.files.output(0).read_bytes() == value.encode("utf-8", "surrogateescape")


def _task_fixed() -> Task:
    root = Path("/shared/job")
    return Task("r1", "true", Path("/shared/project"), {}, JobFiles(root))


@pytest.mark.parametrize(
    ("state", "status", "code", "reason"),
    [
        (JobState("1", "COMPLETED", "None", 0), RunStatus.FINISHED, 0, None),
        (JobState("1", "FAILED", "NonZeroExitCode", 3), RunStatus.FAILED, 3,
         "Slurm job 1 FAILED: entry point exited with code 3"),
        (JobState("1", "TIMEOUT", "TimeLimit", 0, 15), RunStatus.FAILED, 143,
         "Slurm job 1 TIMEOUT: the time limit was reached"),
        (JobState("1", "OUT_OF_MEMORY", "OutOfMemory", 0, 9), RunStatus.FAILED, 137,
         "Slurm job 1 OUT_OF_MEMORY (OutOfMemory)"),
        (JobState("1", "NODE_FAIL", "NodeDown", 0, 0), RunStatus.FAILED, 0,
         "Slurm job 1 NODE_FAIL (NodeDown)"),
        (JobState("1", "PREEMPTED", "None", 0, 0), RunStatus.FAILED, 0, "Slurm job 1 PREEMPTED"),
        (JobState("1", "CANCELLED", "None", 0, 15), RunStatus.KILLED, 143,
         "Slurm job 1 CANCELLED"),
    ],
)  # fmt: skip
def test_slurm_states_map_to_run_ends(
    state: JobState, status: RunStatus, code: int, reason: str | None
) -> None:
    info = exit_info(state)
    assert (info.status, info.exit_code, info.reason) == (status, code, reason)
    assert state.status is status


def test_entry_points_log_over_http_when_the_store_is_a_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from backends.slurm.backend import SlurmBackend

    assert SlurmBackend().tracking == "journal"
    monkeypatch.setenv("RUNNER_TRACKING_URI", "http://127.0.0.1:5000")
    assert SlurmBackend().tracking == "http"


@pytest.mark.parametrize(
    ("slurm_says", "script_wrote", "recorded"),
    [
        (JobState("1_2", "FAILED", "", 0), "2", ("FAILED", 2)),  # squeue behind the script
        (JobState("1", "COMPLETED", "", 0), "0", ("COMPLETED", 0)),
        (JobState("1", "FAILED", "", 3), "3", ("FAILED", 3)),
        (JobState("1", "TIMEOUT", "", 0, 15), "0", ("TIMEOUT", 0)),  # Slurm ended it: its word
        (JobState("1", "FAILED", "", 1), None, ("FAILED", 1)),  # the script never got that far
    ],
)  # fmt: skip
def test_the_scripts_own_exit_code_wins_over_a_lagging_slurm(
    slurm_says: JobState, script_wrote: str | None, recorded: tuple[str, int], tmp_path: Path
) -> None:
    from backends.slurm.watch import _with_script_code

    files = JobFiles(tmp_path)
    files.output(0).write_text("")
    if script_wrote is not None:
        files.exit_status(0).write_text(script_wrote + "\n")
    decided = _with_script_code(slurm_says, files)
    assert decided is not None and (decided.state, decided.exit_code) == recorded
