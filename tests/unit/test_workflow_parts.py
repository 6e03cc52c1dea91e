"""The workflow file, references, durations, the DAG, sweep axes, cache-key parts, outputs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from runner import tracking
from runner.errors import ParameterError, SpecError, UsageError
from runner.execution.ingest import JournalReader, ingest
from runner.workflow import dag
from runner.workflow.cachekey import canonical_value, content_digest
from runner.workflow.durations import parse_duration, shown
from runner.workflow.engine import workflow_parameters
from runner.workflow.refs import BadReference, Ref, references, substitute
from runner.workflow.spec import parse_workflow
from runner.workflow.sweep import combinations, parse_axis


def parse(text: str) -> object:
    return parse_workflow(text.encode(), "wf.yaml", Path("/w"))


def refused(text: str) -> str:
    with pytest.raises(SpecError) as caught:
        parse(text)
    return caught.value.message


def test_a_valid_file_becomes_records() -> None:
    spec = parse_workflow(
        b"name: n\nparameters:\n  rows: {type: int, default: 10}\nsteps:\n"
        b"  a: {project: ., parameters: {x: 1.10, y: '${{ params.rows }}'}, timeout: 10m,"
        b" retries: 2, retry_delay: 0}\n"
        b"  b: {project: git@h:o/r.git#sub, version: v1, needs: [a], entry_point: train}\n",
        "wf.yaml",
        Path("/w"),
    )
    a, b = spec.steps["a"], spec.steps["b"]
    assert a.parameters == {"x": "1.10", "y": "${{ params.rows }}"}  # the text as written
    assert (a.timeout, a.retries, a.retry_delay, a.entry_point) == (600.0, 2, 0.0, "main")
    assert (b.needs, b.version, b.entry_point) == (("a",), "v1", "train")
    assert spec.parameters[0].default == "10" and spec.on_failure == "stop"


def test_schema_problems_name_file_line_and_key() -> None:
    message = refused("steps:\n  a: {project: ., neds: [b]}\n")
    assert message == "wf.yaml:2:19 steps.a.neds: unknown key 'neds' (did you mean 'needs'?)"
    assert refused("") == "wf.yaml:1:1: the file is empty"
    assert refused("name: x\n") == "wf.yaml:1:1: missing required key 'steps'"


def test_a_default_must_fit_its_type() -> None:
    message = refused("parameters:\n  n: {type: int, default: abc}\nsteps:\n  a: {project: .}\n")
    assert message == "wf.yaml:2:18 parameters.n.default: parameter 'n': expected int, got 'abc'"


def test_a_step_needing_itself_and_an_unclosed_reference() -> None:
    message = refused("steps:\n  a: {project: ., needs: [a], parameters: {x: '${{ params.y'}}\n")
    assert "steps.a.needs[0]: a step cannot need itself" in message
    assert "steps.a.parameters.x: '${{' is not closed with '}}'" in message


def test_references_parse_and_substitute() -> None:
    text = "pre-${{ params.a }}-${{steps.s-1.outputs.model/w.pkl}}"
    assert references(text) == [Ref("a"), Ref("model/w.pkl", "s-1")]
    values = {"params.a": "1", "steps.s-1.outputs.model/w.pkl": "runs:/r/model/w.pkl"}
    assert substitute(text, lambda ref: values[str(ref)]) == "pre-1-runs:/r/model/w.pkl"
    with pytest.raises(BadReference) as caught:
        references("${{ env.HOME }}")
    assert str(caught.value).startswith("unknown reference '${{ env.HOME }}'")


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), ("90s", 90.0), ("10m", 600.0), ("2h", 7200.0), ("1.5h", 5400.0)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["10x", True, -1, "m"])
def test_bad_durations_say_what_is_expected(value: object) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(value)
    assert "duration" in str(caught.value) and repr(value) in str(caught.value)


def test_durations_are_shown_as_written() -> None:
    assert [shown(s) for s in (1.0, 600.0, 7200.0, 0.25)] == ["1s", "10m", "2h", "0.25s"]


def test_dag_order_cycles_and_downstream() -> None:
    needs = {"c": ("a", "b"), "a": (), "b": ("a",), "d": ()}
    assert dag.topological(needs) == ["a", "d", "b", "c"]
    assert dag.cycle_in(needs) is None
    assert dag.cycle_in({"x": ("y",), "y": ("x",)}) in (["x", "y", "x"], ["y", "x", "y"])
    assert dag.downstream(needs, {"b"}) == {"b", "c"}


def test_sweep_axes_grid_and_random() -> None:
    axes = [parse_axis("a", "1,2"), parse_axis("b", "x,y,z")]
    assert len(combinations(axes, "grid", None, None)) == 6
    drawn = combinations([parse_axis("lr", "loguniform(0.001, 1)")], "random", 50, 3)
    assert all(0.001 <= float(point["lr"]) <= 1 for point in drawn)
    assert drawn == combinations([parse_axis("lr", "loguniform(0.001,1)")], "random", 50, 3)
    assert {p["c"] for p in combinations([parse_axis("c", "choice(a, b)")], "random", 30, 1)} == {
        "a",
        "b",
    }
    assert parse_axis("x", "uniform(0,1)").sample(random.Random(0)) != ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("uniform(1)", "-P a=uniform(1): uniform(low, high) takes two numbers"),
        ("uniform(a,b)", "-P a=uniform(a,b): uniform(low, high) takes two numbers"),
        ("uniform(2,1)", "-P a=uniform(2,1): need low < high"),
        ("loguniform(0,1)", "-P a=loguniform(0,1): need low < high, both > 0"),
    ],
)
def test_bad_distributions_are_refused(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_axis("a", text)
    assert caught.value.message == message


def test_random_without_samples_is_refused() -> None:
    with pytest.raises(UsageError) as caught:
        combinations([parse_axis("a", "1,2")], "random", None, None)
    assert caught.value.message == "--sweep random needs --samples N"


def test_canonical_values_and_content_digests(tmp_path: Path) -> None:
    assert canonical_value("float", "0.50") == canonical_value("float", ".5") == "0.5"
    assert canonical_value("int", "+007") == "7" and canonical_value("bool", "YES") == "true"
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.txt").write_text("one")
    before = content_digest(tmp_path / "d")
    (tmp_path / "d" / "__pycache__").mkdir()
    (tmp_path / "d" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert content_digest(tmp_path / "d") == before  # bytecode is no source
    (tmp_path / "d" / "f.txt").write_text("two")
    assert content_digest(tmp_path / "d") != before


def test_workflow_parameters_are_typed_and_complete() -> None:
    spec = parse_workflow(
        b"parameters:\n  n: {type: int, default: 1}\n  m: float\nsteps:\n  a: {project: .}\n",
        "wf.yaml",
        Path("/w"),
    )
    assert workflow_parameters(spec, {"m": "0.5"}) == {"n": "1", "m": "0.5"}
    for given, message in [
        ({}, "no value given for workflow parameter(s): m"),
        ({"m": "x"}, "parameter 'm': expected float, got 'x'"),
        ({"m": "1", "z": "2"}, "unknown workflow parameter(s): z (declared: m, n)"),
    ]:
        with pytest.raises(ParameterError) as caught:
            workflow_parameters(spec, given)
        assert caught.value.message == message


class Tags:
    def __init__(self) -> None:
        self.tags: dict[str, str] = {}

    def log_metrics(self, run_id: str, metrics: object) -> None: ...

    def log_params(self, run_id: str, params: object) -> None: ...

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        self.tags.update(tags)


def test_log_output_is_recorded_as_an_output_tag(
    runner_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (runner_home / "artifacts" / "r1").mkdir(parents=True)
    monkeypatch.setenv("RUNNER_RUN_ID", "r1")
    monkeypatch.setenv("RUNNER_ARTIFACTS_DIR", str(runner_home / "artifacts" / "r1"))
    tracking.log_output("model_uri", "runs:/abc/model")
    tracking.log_output("rows", 100)
    store = Tags()
    assert ingest(store, "r1", JournalReader("r1")) == 2  # type: ignore[arg-type]
    assert store.tags == {"runner.output.model_uri": "runs:/abc/model", "runner.output.rows": "100"}
