"""MLflow's real client, from its own venv, logging into runner runs: embedded and via a server.

Each entry point here is code written for MLflow only; the runner starts the run and what the
client logs (params, per-step metrics, tags, a batch, artifacts, a scikit-learn model) must land
in that run, whether the store is the default SQLite file (the runner then serves the MLflow API
for the run's duration) or a `runner server`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runner.store.open import open_store
from tests.helpers import run_cli, write_project

SCRIPT = Path(__file__).with_name("log_everything.py")
MODES = ["embedded", "server"]


def _project(root: Path, python: Path, command: str) -> Path:
    return write_project(
        root,
        {
            "MLproject": f"""
                name: mlflow_client
                entry_points:
                  main:
                    parameters:
                      alpha: {{type: float, default: 0.5}}
                    command: "{python} {command}"
            """
        },
    )


def _run(project: Path, mode: str, url: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"RUNNER_TRACKING_URI": url} if url else {}
    flags = ["--mlflow-api"] if mode == "embedded" else []
    return run_cli("run", str(project), "--env-manager", "local", *flags, *args, env=env)


def _result(output: str) -> dict[str, Any]:
    line = next(line for line in output.splitlines() if line.startswith("RESULT="))
    return dict(json.loads(line.removeprefix("RESULT=")))


def _run_id(stderr: str) -> str:
    return stderr.split("run ", 1)[1].split(" ", 1)[0]


@pytest.fixture
def tracking_url(request: pytest.FixtureRequest) -> str | None:
    mode = request.node.callspec.params.get("mode")
    if mode == "server":
        return str(request.getfixturevalue("runner_server"))
    if mode == "server-postgres":
        return str(request.getfixturevalue("runner_server_on_postgres"))
    return None


@pytest.mark.slow
@pytest.mark.parametrize("mode", [*MODES, "server-postgres"])
def test_real_mlflow_client_logs_everything_into_the_runner_run(
    mode: str, tracking_url: str | None, mlflow_python: Path, runner_home: Path, tmp_path: Path
) -> None:
    project = _project(tmp_path / "p", mlflow_python, f"{SCRIPT} {{alpha}}")
    done = _run(project, mode, tracking_url, "-P", "alpha=0.3", "--experiment-name", "mlf")
    assert done.returncode == 0, done.stderr + done.stdout
    seen = _result(done.stdout)
    run_id = _run_id(done.stderr)

    # what the client read back through the API
    assert seen["run_id"] == run_id == seen["env_run_id"]
    assert seen["experiment_name"] == "mlf"
    assert seen["experiment_id"] == seen["env_experiment_id"] == seen["by_name"]
    assert seen["params"] == {"alpha": "0.3", "solver": "auto", "fold": "3", "batch_param": "b"}
    assert seen["metrics"] == {
        "loss": 0.2,
        "r2": 0.5,
        "nan_metric": None,
        "batch_metric": 2.5,
    }
    assert seen["tags"] == {
        "stage": "test",
        "team": "runner",
        "note": "ünïcode",
        "batch_tag": "t",
    }
    assert seen["history"] == [[0, 1.0], [1, 0.5], [2, 1 / 3], [3, 0.25], [4, 0.2]]
    assert seen["search"] == [run_id] and seen["search_missed"] == []
    assert seen["artifacts"] == ["model", "note.txt", "reports"]
    assert seen["report_files"] == ["reports/a.csv", "reports/deep"]
    assert seen["downloaded"] == "hello from mlflow"
    assert seen["model_uri"].startswith(f"models:/m-{run_id}-")
    assert seen["model_status"].endswith("READY")
    assert seen["prediction_matches"] is True
    assert seen["status_inside"] == "RUNNING"

    # what the runner recorded: the same run, ended by the runner with the exit code
    store = open_store(tracking_url)
    record = store.get_run(run_id)
    assert record.status.value == "FINISHED" and record.exit_code == 0
    assert record.experiment == "mlf"
    assert record.parameters == seen["params"]
    assert record.metrics["loss"] == 0.2 and record.metrics["nan_metric"] is None
    assert record.tags["stage"] == "test" and record.tags["note"] == "ünïcode"
    assert record.tags["runner.mlflow_status"] == "FINISHED"  # end_run, recorded as a tag
    assert [p.step for p in store.metric_history(run_id, "loss")] == [0, 1, 2, 3, 4]
    files = runner_home / "artifacts" / run_id / "files"
    assert (files / "note.txt").read_text() == "hello from mlflow"
    assert (files / "reports" / "deep" / "b.txt").read_text() == "b"
    assert "sklearn" in (files / "model" / "MLmodel").read_text()
    assert (files / "model" / "model.skops").stat().st_size > 0
    store.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("said", "exit_code", "ended"), [("FAILED", 0, "FINISHED"), ("FINISHED", 3, "FAILED")]
)
def test_end_run_status_is_recorded_but_the_exit_code_decides(
    mode: str,
    tracking_url: str | None,
    said: str,
    exit_code: int,
    ended: str,
    mlflow_python: Path,
    tmp_path: Path,
) -> None:
    script = tmp_path / "end.py"
    script.write_text(
        "import sys, mlflow\n"
        "mlflow.log_metric('m', 1.0)\n"  # the implicit run: the runner's
        f"mlflow.end_run({said!r})\n"
        f"sys.exit({exit_code})\n"
    )
    done = _run(_project(tmp_path / "p", mlflow_python, str(script)), mode, tracking_url)
    assert done.returncode == (0 if ended == "FINISHED" else 1), done.stderr
    record = open_store(tracking_url).get_run(_run_id(done.stderr))
    assert record.status.value == ended
    assert record.tags["runner.mlflow_status"] == said
    assert record.metrics == {"m": 1.0}


@pytest.mark.slow
def test_client_errors_say_what_is_wrong(mlflow_python: Path, tmp_path: Path) -> None:
    script = tmp_path / "errors.py"
    script.write_text(
        "import json, mlflow\n"
        "from mlflow.exceptions import MlflowException\n"
        "def attempt(call):\n"
        "    try:\n"
        "        call()\n"
        "    except MlflowException as exc:\n"
        "        return [exc.error_code, exc.message]\n"
        "    return None\n"
        "client = mlflow.MlflowClient()\n"
        "def wrong_token():\n"
        "    import os\n"
        "    good = os.environ['MLFLOW_TRACKING_TOKEN']\n"
        "    os.environ['MLFLOW_TRACKING_TOKEN'] = 'x' * len(good)\n"
        "    try:\n"
        "        return attempt(lambda: client.get_experiment('0'))\n"
        "    finally:\n"
        "        os.environ['MLFLOW_TRACKING_TOKEN'] = good\n"
        "mlflow.start_run()\n"
        "print('RESULT=' + json.dumps({\n"
        "    'wrong_token': wrong_token(),\n"
        "    'changed_param': attempt(lambda: mlflow.log_param('alpha', '9')),\n"
        "    'unknown_run': attempt(lambda: client.get_run('0' * 32)),\n"
        "    'new_run': attempt(lambda: client.create_run('0')),\n"
        "    'bad_filter': attempt(lambda: client.search_runs(['0'], 'metrics.x ~ 1')),\n"
        "    'unknown_experiment': attempt(lambda: client.get_experiment('987654')),\n"
        "}))\n"
    )
    done = _run(_project(tmp_path / "p", mlflow_python, str(script)), "embedded", None)
    assert done.returncode == 0, done.stderr
    seen = _result(done.stdout)
    code, message = seen["changed_param"]
    assert code == "INVALID_PARAMETER_VALUE"
    assert "param 'alpha'" in message and "already '0.5'" in message
    assert seen["unknown_run"][0] == "RESOURCE_DOES_NOT_EXIST"
    assert f"Run with id={'0' * 32} not found" in seen["unknown_run"][1]
    assert seen["new_run"][0] == "INVALID_PARAMETER_VALUE"
    assert "creates none through the MLflow API" in seen["new_run"][1]
    assert seen["bad_filter"][0] == "INVALID_PARAMETER_VALUE"
    assert "'filter'" in seen["bad_filter"][1]
    assert seen["wrong_token"][0] == "UNAUTHENTICATED"
    assert "a valid token is required" in seen["wrong_token"][1]
    assert seen["unknown_experiment"] == [
        "RESOURCE_DOES_NOT_EXIST",
        "RESOURCE_DOES_NOT_EXIST: No Experiment with id=987654 exists",
    ]


SAMPLE = Path(__file__).resolve().parents[3] / "sample_projects" / "sklearn_mlflow"


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_sklearn_mlflow_sample_lands_in_the_run_with_and_without_a_server(
    mode: str, tracking_url: str | None, uv_cache: Path, runner_home: Path
) -> None:
    env = {"UV_CACHE_DIR": str(uv_cache)}
    if tracking_url:
        env["RUNNER_TRACKING_URI"] = tracking_url
    # no --mlflow-api: the locked python_env has mlflow-skinny, so the API is served anyway
    done = run_cli("run", str(SAMPLE), "-P", "alpha=0.01", "-P", "epochs=5", env=env, timeout=900)
    assert done.returncode == 0, done.stderr + done.stdout
    run_id = _run_id(done.stderr)
    assert f"model models:/m-{run_id}-" in done.stdout
    store = open_store(tracking_url)
    record = store.get_run(run_id)
    assert record.status.value == "FINISHED"
    assert record.parameters == {"alpha": "0.01", "l1_ratio": "0.15", "epochs": "5"}
    assert record.tags["model_family"] == "elastic-net (SGD)"
    assert any(p.startswith("mlflow-skinny==") for p in record.environment["packages"])
    for key in ("train_rmse", "val_rmse"):
        assert [p.step for p in store.metric_history(run_id, key)] == [0, 1, 2, 3, 4]
    assert record.metrics["val_rmse"] == pytest.approx(
        list(store.metric_history(run_id, "val_rmse"))[-1].value
    )
    files = runner_home / "artifacts" / run_id / "files"
    assert json.loads((files / "coefficients.json").read_text())["coef"]
    assert {"MLmodel", "model.skops", "requirements.txt"} <= {
        f.name for f in (files / "model").iterdir()
    }
    models = [key for key in record.tags if key.startswith("runner.logged_model.m-")]
    assert len(models) == 1
    assert json.loads(record.tags[models[0]])["status"] == "LOGGED_MODEL_READY"
    store.close()


@pytest.mark.slow
def test_sklearn_autolog_lands_in_the_run(mlflow_python: Path, tmp_path: Path) -> None:
    script = tmp_path / "autolog.py"
    script.write_text(
        "import json, mlflow\n"
        "from sklearn.datasets import load_diabetes\n"
        "from sklearn.linear_model import Ridge\n"
        "mlflow.sklearn.autolog()\n"
        "x, y = load_diabetes(return_X_y=True)\n"
        "with mlflow.start_run() as run:\n"
        "    Ridge(alpha=0.5).fit(x, y)\n"
        "inputs = mlflow.MlflowClient().get_run(run.info.run_id).inputs.dataset_inputs\n"
        "print('RESULT=' + json.dumps([d.dataset.name for d in inputs]))\n"
    )
    done = _run(_project(tmp_path / "p", mlflow_python, str(script)), "embedded", None)
    assert done.returncode == 0, done.stderr
    assert "autologging" not in done.stderr  # MLflow warns there when a logging call fails
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT="))
    assert json.loads(line.removeprefix("RESULT=")) == ["dataset"]
    record = open_store().get_run(_run_id(done.stderr))
    assert record.parameters["alpha"] == "0.5" and record.parameters["fit_intercept"] == "True"
    assert record.metrics["training_r2_score"] > 0.4
    assert record.tags["estimator_name"] == "Ridge"
