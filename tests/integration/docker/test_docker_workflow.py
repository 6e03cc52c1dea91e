"""A workflow whose steps run on two backends: this machine, then a Docker container that reads
the first step's artifact through a path parameter."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from runner.home import run_artifacts_dir
from tests.docker_images import PROJECT_PREFIX
from tests.helpers import record, run_cli, write_project

pytestmark = pytest.mark.docker


def test_local_then_docker_step_passes_an_artifact(
    tmp_path: Path, python_image: str, docker_client: Any
) -> None:
    write_project(
        tmp_path / "make",
        {
            "MLproject": 'entry_points:\n  main: {command: "python make.py"}\n',
            "make.py": """
                import os, tempfile, runner_tracking as t
                path = os.path.join(tempfile.mkdtemp(), "numbers.txt")
                open(path, "w").write("1 2 3 4")
                t.log_artifact(path)
            """,
        },
    )
    write_project(
        tmp_path / "sum",
        {
            "MLproject": f"""
                name: {PROJECT_PREFIX}-workflow
                docker_env:
                  image: {python_image}
                entry_points:
                  main:
                    parameters: {{numbers: path}}
                    command: "python sum.py {{numbers}}"
            """,
            "sum.py": "import sys\nprint('SUM', sum(map(int, open(sys.argv[1]).read().split())))\n",
        },
    )
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        textwrap.dedent(
            """
            steps:
              make: {project: make}
              sum: {project: sum, needs: [make], parameters: {numbers: "${{ steps.make.outputs.numbers.txt }}"}}
            """
        )
    )
    result = run_cli("workflow", "run", str(wf), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    make, total = (record(summary["steps"][s]["run_id"]) for s in ("make", "sum"))
    assert (make["backend"], total["backend"]) == ("local", "docker")
    assert total["parameters"]["numbers"] == f"runs:/{make['run_id']}/numbers.txt"
    assert "SUM 10" in (run_artifacts_dir(total["run_id"]) / "output.log").read_text()
