"""A Job with runs:/ inputs: the fetch runs first, under the same shell, and gates the command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from backends.kubernetes.config import settings
from backends.kubernetes.image import INPUTS_ENTRY
from backends.kubernetes.manifest import (
    SCHEMA_VERSIONS,
    JobInput,
    generated_job,
    load_template,
    templated_job,
)
from backends.kubernetes.pod_inputs import FetchError, split_uri

RUN_ID = "0466787b516743e99f9bedbccd9f82d3"
COPY = "/tmp/runner-input-abc/model.txt"
INPUTS = {COPY: f"runs:/{RUN_ID}/model.txt"}
TEMPLATE = """\
apiVersion: batch/v1
kind: Job
metadata: {name: x}
spec:
  template:
    spec:
      containers: [{name: x, image: x, command: [x]}]
      restartPolicy: Never
"""


def _input(inputs: dict[str, str], command: str = f"cat {COPY}") -> JobInput:
    return JobInput(
        run_id=RUN_ID,
        image="registry.example.internal/team/proj@sha256:" + "a" * 64,
        command=command,
        env={"RUNNER_RUN_ID": RUN_ID},
        working_dir="/runner/project",
        labels={},
        inputs=inputs,
    )


def _container(job: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = job["spec"]["template"]["spec"]["containers"][0]
    return container


def _ran(
    argv: list[str], fetcher: Path, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The container's argv under the real shell, with ``fetcher`` in place of the pod's script."""
    argv = [*argv[:2], argv[2].replace(INPUTS_ENTRY, str(fetcher)), *argv[3:]]
    env = {
        "PATH": path if path is not None else str(Path(sys.executable).parent) + ":/usr/bin:/bin"
    }
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)


def test_the_inputs_go_to_the_pod_as_json_and_the_command_stays_the_last_word() -> None:
    container = _container(generated_job(settings({}), _input(INPUTS)))
    env = {e["name"]: e["value"] for e in container["env"]}
    assert json.loads(env["RUNNER_INPUTS"]) == INPUTS
    assert container["command"][-1] == f"cat {COPY}"
    assert INPUTS_ENTRY in container["command"][2]


def test_without_inputs_the_pod_runs_the_command_alone() -> None:
    container = _container(generated_job(settings({}), _input({})))
    assert "RUNNER_INPUTS" not in {e["name"] for e in container["env"]}
    assert INPUTS_ENTRY not in " ".join(container["command"])


def test_template_mode_fetches_the_inputs_too(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(TEMPLATE)
    job = templated_job(load_template(str(path)), settings({}), _input(INPUTS))
    container = _container(job)
    assert INPUTS_ENTRY in container["command"][2]
    assert {e["name"] for e in container["env"]} >= {"RUNNER_INPUTS", "RUNNER_RUN_ID"}
    for version in SCHEMA_VERSIONS:
        assert kubernetes_validate.validate(job, version, strict=True) == version


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_a_job_with_inputs_validates_strictly(version: str) -> None:
    job = generated_job(settings({}), _input(INPUTS))
    assert kubernetes_validate.validate(job, version, strict=True) == version


def test_the_command_runs_after_a_fetch_that_succeeded(tmp_path: Path) -> None:
    fetcher = tmp_path / "fetch.py"
    fetcher.write_text("print('fetched')\n")
    argv = _container(generated_job(settings({}), _input(INPUTS, "echo ran 'a b'")))["command"]
    ran = _ran(argv, fetcher)
    assert (ran.returncode, ran.stdout) == (0, "fetched\nran a b\n")


def test_a_failed_fetch_ends_the_pod_with_its_code_and_the_command_never_runs(
    tmp_path: Path,
) -> None:
    fetcher = tmp_path / "fetch.py"
    fetcher.write_text("import sys\nsys.exit('runner: cannot fetch the input')\n")
    argv = _container(generated_job(settings({}), _input(INPUTS, "echo ran")))["command"]
    ran = _ran(argv, fetcher)
    assert ran.returncode == 1
    assert ran.stdout == ""
    assert ran.stderr == "runner: cannot fetch the input\n"


def test_an_image_without_python_says_why_the_inputs_cannot_be_fetched(tmp_path: Path) -> None:
    argv = _container(generated_job(settings({}), _input(INPUTS, "echo ran")))["command"]
    ran = _ran(argv, tmp_path / "fetch.py", path=str(tmp_path))  # no python on PATH
    assert ran.returncode == 127
    assert ran.stdout == ""
    assert ran.stderr == (
        "runner: runs:/ inputs are fetched with the Python of the image, which has neither "
        "python3 nor python\n"
    )


def test_a_uri_runner_did_not_write_is_refused() -> None:
    assert split_uri(f"runs:/{RUN_ID}/a/b.txt") == (RUN_ID, "a/b.txt")
    with pytest.raises(FetchError, match="is not a runs:/<run-id>/<artifact-path> URI"):
        split_uri(f"runs:/{RUN_ID}")


def test_a_detached_supervisor_gets_the_inputs_origins_from_plan_json(tmp_path: Path) -> None:
    from runner.execution.plan import Plan

    plan = Plan(
        project_dir=tmp_path,
        entry_point="main",
        command=f"cat {COPY}",
        parameters={"data": f"runs:/{RUN_ID[:8]}/model.txt"},
        source={},
        env_manager="local",
        backend="kubernetes",
        backend_config={},
        experiment="Default",
        run_name=None,
        parent_run_id=None,
        input_paths=(COPY,),
        input_sources=INPUTS,
    )
    assert Plan.from_json(plan.to_json()).input_sources == INPUTS
    older = json.loads(plan.to_json())
    del older["input_sources"]  # a plan.json written before runs:/ inputs reached pods
    assert Plan.from_json(json.dumps(older)).input_sources == {}
