"""MLflow-format leniency through the CLI: what MLflow ignores runs here too, with a warning."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import ARGV_PROBE, probe_argv, record, run_cli, write_project

REPO = Path(__file__).resolve().parents[2]


def _mnist_like(tmp_path: Path) -> Path:
    # the shape of MLflow's examples/pytorch/MNIST and examples/hyperparam MLproject files
    return write_project(
        tmp_path / "p",
        {
            "MLproject": """
                entry_points:
                  main:
                    parameters:
                      strategy: {type str, default: "auto"}
                      momentum: {type: float, default: .0}
                    command: python probe.py {strategy} {momentum}
            """,
            "probe.py": ARGV_PROBE,
        },
    )


def test_unknown_parameter_key_runs_with_a_warning_and_mlflow_values(tmp_path: Path) -> None:
    result = run_cli("run", str(_mnist_like(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert probe_argv(result.stdout) == ["auto", "0.0"]
    assert (
        "runner: warning: MLproject:4:18 entry_points.main.parameters.strategy.type str: "
        "unknown key 'type str' ignored, as MLflow ignores it (did you mean 'type'?)"
    ) in result.stderr.splitlines()


def test_the_warning_is_recorded_with_the_run(tmp_path: Path) -> None:
    result = run_cli("run", str(_mnist_like(tmp_path)))
    assert result.returncode == 0, result.stderr
    run_id = result.stderr.split("run ", 1)[1].split()[0]
    rec = record(run_id)
    assert rec["parameters"] == {"strategy": "auto", "momentum": "0.0"}
    assert "unknown key 'type str' ignored" in rec["tags"]["runner.source_warning"]


def test_spec_errors_point_at_the_schema_command(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", {"MLproject": "entrypoints: {}\n"})
    result = run_cli("run", str(project))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: MLproject:1:1 entrypoints: unknown key 'entrypoints' "
        "(did you mean 'entry_points'?)",
        "hint: `runner spec schema` prints the MLproject format (a JSON Schema)",
    ]


def test_spec_schema_prints_the_mlproject_schema() -> None:
    result = run_cli("spec", "schema")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed == json.loads((REPO / "schemas" / "mlproject.schema.json").read_text())
    assert printed["title"] == "MLproject"


def test_spec_schema_of_a_run_record_and_an_unknown_name() -> None:
    assert json.loads(run_cli("spec", "schema", "run").stdout)["title"]
    result = run_cli("spec", "schema", "workflow")
    assert result.returncode == 2
    assert "'workflow' is not one of 'mlproject', 'run'" in result.stderr
