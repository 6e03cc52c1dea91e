"""The benchmark harness: rounds and reporting on fake cases, and a real `--quick` smoke run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness import Case, Context, Measurement, Plan, markdown_table, run_case

REPO = Path(__file__).resolve().parents[2]
QUICK_CASES = {
    "cli-overhead",
    "store-log-100k-metrics",
    "store-list-10k-runs",
    "scale-list-1k",
    "reconcile-10k-live",
    "server-log-100k-metrics",
    "server-search-10k-runs",
}


def _side_ok(name: str, side: dict[str, object]) -> None:
    """A runner side either measured, or honestly not available (e.g. CLI not written yet)."""
    status, reason = side["status"], side["reason"]
    if status == "ok":
        samples = side["samples"]
        assert isinstance(samples, list) and len(samples) == 1, (name, side)
        assert isinstance(side["median"], float) and side["median"] > 0, (name, side)
    else:
        assert status == "not available", f"{name}: runner side {status}: {reason}"
        assert isinstance(reason, str) and reason.startswith("not available: "), (name, side)


@pytest.mark.slow
def test_quick_benchmark_runs_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    env = {**os.environ, "RUNNER_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert doc["quick"] is True and doc["rounds"] == 1 and doc["mlflow_version"] is None
    cases = {case["name"]: case for case in doc["cases"]}
    assert set(cases) == QUICK_CASES
    for name, case in cases.items():
        _side_ok(name, case["runner"])
        mlflow = case["mlflow"]  # None: a runner-only case
        assert mlflow is None or mlflow["status"] == "skipped", (name, mlflow)
        assert case["ratio"] is None
    assert "| cli-overhead |" in proc.stdout
    assert cases["store-log-100k-metrics"]["params"] == "N=10000"
    assert cases["scale-list-1k"]["params"] == "N=1,000"
    assert cases["scale-list-1k"]["runner"]["extra"]["api_ms"] > 0  # the store call, timed alone


def _fake_case(calls: list[str], mlflow_fails: bool = False) -> Case:
    def runner(ctx: Context) -> float:
        calls.append(f"A{ctx.round}")
        return 0.5

    def mlflow(ctx: Context) -> Measurement:
        calls.append(f"B{ctx.round}")
        if mlflow_fails:
            raise RuntimeError("boom")
        return Measurement(2.0, {"peak_rss_mb": 10.0})

    return Case("fake", "a fake case", lambda: None, runner, mlflow, mlflow_available=lambda: None)


def test_rounds_alternate_after_warmup_and_warmup_is_not_counted() -> None:
    calls: list[str] = []
    result = run_case(_fake_case(calls), Plan(3, 1, True, False), log=lambda _m: None)
    assert calls == ["A-1", "B-1", "A0", "B0", "A1", "B1", "A2", "B2"]
    assert result.runner.samples == [0.5] * 3 and result.ratio == 4.0
    assert not result.failed
    assert "4.0x faster" in markdown_table([result])


def test_failures_and_unavailable_sides_are_reported_not_hidden() -> None:
    calls: list[str] = []
    failing = run_case(_fake_case(calls, mlflow_fails=True), Plan(2, 0, True, False), print)
    assert failing.failed and failing.mlflow is not None
    assert failing.mlflow.status == "error" and "boom" in str(failing.mlflow.reason)
    assert calls == ["A0", "B0", "A1"]  # a failed side is not retried in later rounds
    absent = Case("absent", "x", lambda: "not available: nope", lambda _c: 1.0)
    result = run_case(absent, Plan(1, 0, False, True), log=lambda _m: None)
    assert result.runner.status == "not available" and result.ratio is None
    assert "runner not available: nope" in markdown_table([result])
