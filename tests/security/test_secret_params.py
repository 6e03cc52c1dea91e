"""A `secret: true` parameter reaches the entry point and nothing else: not the store, plan.json,
runs show, the captured output or the logs (it is masked there as CI systems mask secrets)."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from runner.display import SecretMask
from tests.helpers import record, records, run_cli, write_project

SECRET = "s3cr3t-T0KEN-4242"
MLPROJECT = """
entry_points:
  main:
    parameters:
      token: {type: string, secret: true}
      out: {type: string, default: ""}
      n: {type: int, default: 1}
    command: "echo token={token} n={n}; printf %s {token} > {out}; env > {out}.env"
"""


REFUSED = """
entry_points:
  main:
    parameters: {key: {type: int, secret: true}}
    command: "echo {key}"
"""


def _project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "p", {"MLproject": MLPROJECT})


def _nowhere_under(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), f"the secret is in {path}"


def test_the_entry_point_gets_it_the_records_and_output_do_not(
    tmp_path: Path, runner_home: Path
) -> None:
    out = tmp_path / "received"
    result = run_cli("run", str(_project(tmp_path)), "-P", f"token={SECRET}", "-P", f"out={out}")
    assert result.returncode == 0, result.stderr
    assert out.read_text() == SECRET  # passed to the entry point as given
    assert "token=*** n=1" in result.stdout and SECRET not in result.stdout + result.stderr
    [rec] = records()
    assert rec["parameters"]["token"] == "***"
    assert SECRET not in json.dumps(rec) and "***" in rec["command"]
    assert SECRET not in run_cli("runs", "show", rec["run_id"]).stdout
    _nowhere_under(runner_home)  # store, plan.json, output.log, caches


def test_a_detached_run_gets_it_through_the_supervisor_only(
    tmp_path: Path, runner_home: Path
) -> None:
    out = tmp_path / "received"
    args = ["run", str(_project(tmp_path)), "-P", f"token={SECRET}", "-P", f"out={out}"]
    result = run_cli(*args, "--detach")
    assert result.returncode == 0, result.stderr
    run_id = result.stdout.strip()
    deadline = time.monotonic() + 60
    while record(run_id)["status"] not in ("FINISHED", "FAILED", "KILLED"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert record(run_id)["status"] == "FINISHED"
    assert out.read_text() == SECRET
    assert "RUNNER_SUPERVISOR_SECRETS" not in Path(f"{out}.env").read_text()
    plan = json.loads((runner_home / "artifacts" / run_id / "plan.json").read_text())
    assert plan["has_secrets"] is True and plan["parameters"]["token"] == "***"
    _nowhere_under(runner_home)


def test_a_refusal_names_the_parameter_never_the_value(tmp_path: Path) -> None:
    project = write_project(
        tmp_path / "p",
        {"MLproject": REFUSED},
    )
    result = run_cli("run", str(project), "-P", f"key={SECRET}")
    assert result.returncode == 1
    assert SECRET not in result.stderr and "key" in result.stderr and "***" in result.stderr
    assert records() == []


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.sampled_from([SECRET, "s3cr3t", "-T0K", "x", "\n", "s", SECRET[:-1]])),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
)
def test_no_chunking_lets_a_secret_through(pieces: list[str], cuts: list[int]) -> None:
    stream = "".join(pieces).encode()
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    mask = SecretMask([SECRET])
    shown = b"".join(mask.feed("stdout", stream[a:b]) for a, b in itertools.pairwise(bounds))
    shown += mask.flush("stdout")
    assert shown == stream.replace(SECRET.encode(), b"***")
