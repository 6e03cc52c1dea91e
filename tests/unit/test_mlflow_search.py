"""MLflow's search_runs filter and order-by strings, and which environments get the MLflow API."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from runner.envs import PreparedEnv
from runner.execution.mlflow_api import has_mlflow
from runner.server.mlflow.protocol import MlflowError
from runner.server.mlflow.search import matcher, parse_filter, sort_runs
from runner.status import RunStatus
from runner.store import RunRecord

BASE = RunRecord(
    run_id="a" * 32,
    experiment="e",
    run_name="brave-otter-101",
    status=RunStatus.FINISHED,
    start_time="2026-01-01T00:00:00.000Z",
    end_time=None,
    exit_code=0,
    failure_reason=None,
    entry_point="main",
    parameters={"alpha": "0.5", "solver": "lbfgs"},
    command="",
    source={},
    environment={"manager": "local"},
    backend="local",
    tags={"stage": "prod", "team.name": "ml"},
    metrics={"rmse": 0.8, "nan": None},
    parent_run_id=None,
)


def _matches(text: str, record: RunRecord = BASE) -> bool:
    return matcher(parse_filter(text))(record)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("metrics.rmse < 1", True),
        ("metrics.rmse >= 0.8 AND params.alpha = '0.5'", True),
        ("metrics.rmse > 0.8", False),
        ("metrics.missing < 1", False),
        ("params.solver != 'lbfgs'", False),
        ("params.alpha > 0.4", True),  # a numeric comparison of a param's text
        ("tags.stage LIKE 'pr%'", True),
        ("tags.stage ILIKE 'PROD'", True),
        ("tags.stage LIKE 'PROD'", False),
        ("tags.`team.name` = 'ml'", True),
        ('tags."team.name" = "ml"', True),
        ("attributes.status = 'FINISHED'", True),
        ("status IN ('RUNNING', 'SCHEDULED')", False),
        ("attributes.status NOT IN ('RUNNING')", True),
        ("attributes.run_name = 'brave-otter-101' and metrics.rmse = 0.8", True),
        ("tags.`mlflow.runName` = 'brave-otter-101'", True),
        ("attributes.start_time > 0", True),
    ],
)
def test_filters_match_as_mlflow_defines_them(text: str, expected: bool) -> None:
    assert _matches(text) is expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("metrics.rmse ~ 1", "cannot read it from '~ 1'"),
        ("bogus.rmse = 1", "unknown entity 'bogus' (use metrics., params., tags., attributes.)"),
        ("metrics.rmse = 1 OR metrics.rmse = 2", "expected AND between clauses, found 'OR'"),
        ("metrics.rmse =", "metrics.rmse = has no value"),
        ("params.alpha IN '0.5'", "IN needs a parenthesised list of strings"),
    ],
)
def test_bad_filters_name_the_problem(text: str, reason: str) -> None:
    with pytest.raises(MlflowError) as caught:
        parse_filter(text)
    assert caught.value.code == "INVALID_PARAMETER_VALUE"
    assert caught.value.message == f"Invalid value for parameter 'filter': {reason} in {text!r}"


def test_nan_metrics_compare_as_nan() -> None:
    assert _matches("metrics.nan != 1") is True
    assert _matches("metrics.nan < 1") is False
    assert math.isnan(BASE.metrics["nan"] or math.nan)


def test_order_by_metric_then_newest_with_missing_values_last() -> None:
    low = replace(BASE, run_id="b" * 32, metrics={"rmse": 0.1})
    none = replace(BASE, run_id="c" * 32, metrics={}, start_time="2026-02-01T00:00:00.000Z")
    high = replace(BASE, run_id="d" * 32, metrics={"rmse": 0.9})
    ordered = sort_runs([low, none, high], ["metrics.rmse DESC"])
    assert [r.run_id[0] for r in ordered] == ["d", "b", "c"]
    # no order: newest first, then by run id
    assert [r.run_id[0] for r in sort_runs([low, none, high], [])] == ["c", "d", "b"]


def test_order_by_refuses_what_it_cannot_sort_by() -> None:
    with pytest.raises(MlflowError) as caught:
        sort_runs([BASE], ["attributes.colour"])
    assert caught.value.message == (
        "Invalid value for parameter 'order_by': cannot order by 'attributes.colour'"
    )


@pytest.mark.parametrize(
    ("packages", "expected"),
    [
        (["mlflow==3.1.0", "numpy==2.0"], True),
        (["MLflow_Skinny==3.1.0"], True),
        (["mlflow.skinny==3.1"], True),
        (["mlflow-tracing==3.1.0", "mlflowx==1"], False),
        ([], False),
    ],
)
def test_the_api_is_served_when_the_locked_env_has_mlflow(
    packages: list[str], expected: bool
) -> None:
    assert has_mlflow(PreparedEnv(manager="uv", details={"packages": packages})) is expected
    assert has_mlflow(PreparedEnv(manager="local")) is False
