"""Workflows through the real CLI: order, parallelism, outputs, cache, retries, failure
policies, Ctrl-C, resume after SIGKILL, two backends, and the errors a user sees."""

from __future__ import annotations

import json
import signal
import textwrap
import time
from pathlib import Path
from typing import Any

from tests.helpers import RUNNER, record, records, run_cli, write_project

SLEEPER = """
    entry_points:
      main:
        parameters: {seconds: {type: float, default: 0}, label: {type: string, default: x}}
        command: "python step.py {seconds} {label}"
"""
STEP_PY = """
    import sys, time, runner_tracking as t
    time.sleep(float(sys.argv[1]))
    t.log_output("label", sys.argv[2] + "!")
    print("done", sys.argv[2])
"""


def sleeper(root: Path) -> Path:
    return write_project(root, {"MLproject": SLEEPER, "step.py": STEP_PY})


def workflow_file(folder: Path, text: str) -> Path:
    path = folder / "wf.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def run_json(path: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run_cli("workflow", "run", str(path), "--json", *args, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    summary: dict[str, Any] = json.loads(lines[-1])
    summary["returncode"], summary["stderr"] = result.returncode, result.stderr
    summary["events"] = [json.loads(line)["message"] for line in lines[:-1]]
    return summary


def ms(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_independent_steps_run_in_parallel_and_a_join_waits_for_both(tmp_path: Path) -> None:
    sleeper(tmp_path / "p")
    wf = workflow_file(
        tmp_path,
        """
        steps:
          a: {project: p, parameters: {seconds: 1}}
          b: {project: p, parameters: {seconds: 1}}
          c: {project: p, needs: [a, b]}
        """,
    )
    summary = run_json(wf, "--max-parallel", "2")
    assert summary["returncode"] == 0, summary["stderr"]
    a, b, c = (record(summary["steps"][s]["run_id"]) for s in "abc")
    # a and b overlap (both started before either ended): about 1 s for both, not 2
    assert ms(a["start_time"]) < ms(b["end_time"]) and ms(b["start_time"]) < ms(a["end_time"])
    assert ms(c["start_time"]) >= max(ms(a["end_time"]), ms(b["end_time"]))
    workflow_run = summary["run_id"]
    assert {a["parent_run_id"], b["parent_run_id"], c["parent_run_id"]} == {workflow_run}
    assert record(workflow_run)["status"] == "FINISHED"


def test_outputs_pass_values_and_artifacts_and_a_rerun_is_fully_cached(tmp_path: Path) -> None:
    write_project(
        tmp_path / "etl",
        {
            "MLproject": """
                entry_points:
                  main:
                    parameters: {rows: int}
                    command: "python etl.py {rows}"
            """,
            "etl.py": """
                import os, sys, tempfile, runner_tracking as t
                out = os.path.join(tempfile.mkdtemp(), "data.csv")
                open(out, "w").write("\\n".join(map(str, range(int(sys.argv[1])))))
                t.log_artifact(out)
                t.log_output("rows", sys.argv[1])
            """,
        },
    )
    write_project(
        tmp_path / "train",
        {
            "MLproject": """
                entry_points:
                  main:
                    parameters: {data: path, rows: int}
                    command: "python train.py {data} {rows}"
            """,
            "train.py": """
                import sys
                print("lines", len(open(sys.argv[1]).read().split()), "rows", sys.argv[2])
            """,
        },
    )
    wf = workflow_file(
        tmp_path,
        """
        parameters:
          rows: {type: int, default: 5}
        steps:
          etl: {project: etl, parameters: {rows: "${{ params.rows }}"}}
          train:
            project: train
            needs: [etl]
            parameters:
              data: "${{ steps.etl.outputs.data.csv }}"
              rows: "${{ steps.etl.outputs.rows }}"
        """,
    )
    first = run_json(wf)
    assert first["returncode"] == 0, first["stderr"]
    etl_id, train_id = first["steps"]["etl"]["run_id"], first["steps"]["train"]["run_id"]
    train = record(train_id)
    assert train["parameters"] == {"data": f"runs:/{etl_id}/data.csv", "rows": "5"}
    from runner.home import run_artifacts_dir

    assert "lines 5 rows 5" in (run_artifacts_dir(train_id) / "output.log").read_text()
    second = run_json(wf)
    assert second["returncode"] == 0, second["stderr"]
    assert {s["status"] for s in second["steps"].values()} == {"cached"}
    assert second["steps"]["train"]["cached_from"] == train_id
    reused = record(second["steps"]["train"]["run_id"])
    assert reused["tags"]["runner.cached_from"] == train_id
    assert reused["parent_run_id"] == second["run_id"]
    # a parameter change misses for etl and, through its key, for train
    third = run_json(wf, "-P", "rows=7")
    assert [third["steps"][s]["status"] for s in ("etl", "train")] == ["finished", "finished"]


def test_code_change_misses_only_downstream(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        sleeper(tmp_path / name)
    wf = workflow_file(
        tmp_path,
        """
        steps:
          a: {project: a}
          b: {project: b, needs: [a]}
          c: {project: c, needs: [b]}
        """,
    )
    assert run_json(wf)["returncode"] == 0
    changed = textwrap.dedent(STEP_PY).replace("done", "finished")
    (tmp_path / "b" / "step.py").write_text(changed)
    again = run_json(wf)
    assert again["returncode"] == 0, again["stderr"]
    statuses = [again["steps"][s]["status"] for s in "abc"]
    assert statuses == ["cached", "finished", "finished"]
    forced = run_json(wf, "--refresh", "a")
    assert [forced["steps"][s]["status"] for s in "abc"] == ["finished", "cached", "cached"]
    none = run_json(wf, "--no-cache")
    assert {s["status"] for s in none["steps"].values()} == {"finished"}


def test_environment_change_misses_and_the_same_environment_hits(tmp_path: Path) -> None:
    project = sleeper(tmp_path / "p")
    (project / "python_env.yaml").write_text("python: '3.11'\ndependencies: []\n")
    wf = workflow_file(tmp_path, "steps:\n  a: {project: p}\n")
    in_uv = run_json(wf)
    assert in_uv["returncode"] == 0, in_uv["stderr"]
    assert record(in_uv["steps"]["a"]["run_id"])["environment"]["manager"] == "uv"
    # the same source and parameters in another environment: never the uv env's result
    local = run_json(wf, "--env-manager", "local")
    assert local["steps"]["a"]["status"] == "finished"
    assert local["steps"]["a"]["cache_key"] != in_uv["steps"]["a"]["cache_key"]
    again = run_json(wf)
    assert again["steps"]["a"]["cached_from"] == in_uv["steps"]["a"]["run_id"]


def test_a_failing_step_is_retried(tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    write_project(
        tmp_path / "flaky",
        {
            "MLproject": f"""
                entry_points:
                  main:
                    command: "python flaky.py {counter}"
            """,
            "flaky.py": """
                import sys, pathlib
                p = pathlib.Path(sys.argv[1])
                n = int(p.read_text()) + 1 if p.exists() else 1
                p.write_text(str(n))
                sys.exit(0 if n >= 3 else 3)
            """,
        },
    )
    wf = workflow_file(tmp_path, "steps:\n  f: {project: flaky, retries: 2, retry_delay: 0.1}\n")
    summary = run_json(wf)
    assert summary["returncode"] == 0, summary["stderr"]
    assert summary["steps"]["f"]["attempts"] == 3 and summary["steps"]["f"]["status"] == "finished"
    attempts = sorted(r["tags"]["runner.attempt"] for r in records() if r["entry_point"] == "main")
    assert attempts == ["1", "2", "3"]
    assert summary["events"].count("FAILED: entry point exited with code 3; retrying in 0.1s") == 1
    assert summary["events"].count("FAILED: entry point exited with code 3; retrying in 0.2s") == 1


FAILING = """
    entry_points:
      main:
        command: "python -c 'import sys; sys.exit(4)'"
"""


def test_failure_policies_stop_and_continue(tmp_path: Path) -> None:
    write_project(tmp_path / "bad", {"MLproject": FAILING})
    sleeper(tmp_path / "ok")
    wf = workflow_file(
        tmp_path,
        """
        steps:
          broken: {project: bad}
          after: {project: ok, needs: [broken]}
          other: {project: ok}
        """,
    )
    stop = run_json(wf)
    assert stop["returncode"] == 1
    assert stop["steps"]["broken"]["status"] == "failed"
    assert (
        "exit" in stop["steps"]["broken"]["reason"] or "code 4" in stop["steps"]["broken"]["reason"]
    )
    assert stop["steps"]["after"]["status"] == "skipped"
    assert stop["steps"]["other"]["status"] == "skipped"
    assert record(stop["run_id"])["failure_reason"] == "step(s) failed: broken"
    go_on = run_json(wf, "--on-failure", "continue")
    assert go_on["returncode"] == 1
    assert go_on["steps"]["other"]["status"] == "finished"
    assert go_on["steps"]["after"]["status"] == "skipped"
    assert go_on["steps"]["after"]["reason"] == "not run: step 'broken' did not finish"


def test_a_timeout_kills_the_step(tmp_path: Path) -> None:
    sleeper(tmp_path / "p")
    wf = workflow_file(
        tmp_path, "steps:\n  slow: {project: p, parameters: {seconds: 30}, timeout: 1s}\n"
    )
    summary = run_json(wf)
    assert summary["returncode"] == 1
    assert summary["steps"]["slow"]["reason"] == "KILLED: timed out after 1s"
    assert record(summary["steps"]["slow"]["run_id"])["status"] == "KILLED"


def _spawn(*args: str) -> Any:
    import subprocess

    return subprocess.Popen(
        [*RUNNER, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_running(step: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in records() if r["tags"].get("runner.step") == step]
        if found and found[0]["status"] == "RUNNING":
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"step {step} never ran")


def test_ctrl_c_cancels_running_steps_and_starts_no_more(tmp_path: Path) -> None:
    sleeper(tmp_path / "p")
    wf = workflow_file(
        tmp_path,
        """
        steps:
          long: {project: p, parameters: {seconds: 60}}
          next: {project: p, needs: [long]}
        """,
    )
    proc = _spawn("workflow", "run", str(wf))
    step = _wait_for_running("long")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert record(step["run_id"])["status"] == "KILLED"
    assert record(step["parent_run_id"])["status"] == "KILLED"
    assert not [r for r in records() if r["tags"].get("runner.step") == "next"]


def test_runs_cancel_of_the_workflow_run_kills_its_steps(tmp_path: Path) -> None:
    sleeper(tmp_path / "p")
    wf = workflow_file(tmp_path, "steps:\n  long: {project: p, parameters: {seconds: 60}}\n")
    proc = _spawn("workflow", "run", str(wf))
    step = _wait_for_running("long")
    result = run_cli("runs", "cancel", step["parent_run_id"])
    assert result.returncode == 0, result.stderr
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "runner: workflow KILLED (terminated); its running steps were cancelled" in err
    assert record(step["run_id"])["status"] == "KILLED"
    assert record(step["parent_run_id"])["status"] == "KILLED"


def test_resume_after_sigkill_runs_only_what_did_not_finish(tmp_path: Path) -> None:
    sleeper(tmp_path / "p")
    wf = workflow_file(
        tmp_path,
        """
        steps:
          first: {project: p, parameters: {label: one}}
          middle: {project: p, needs: [first], parameters: {seconds: 5, label: two}}
          last: {project: p, needs: [middle], parameters: {label: three}}
        """,
    )
    proc = _spawn("workflow", "run", str(wf), "--no-cache")
    middle = _wait_for_running("middle")
    live = run_cli("workflow", "resume", middle["parent_run_id"])
    assert live.returncode == 2
    assert f"workflow run {middle['parent_run_id']} is still RUNNING" in live.stderr
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    workflow_run = middle["parent_run_id"]
    result = run_cli("workflow", "resume", workflow_run, "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["steps"]["first"]["status"] == "cached"
    assert summary["steps"]["middle"]["cached_from"] == middle["run_id"]  # it ran on
    assert summary["steps"]["last"]["status"] == "finished"
    assert record(summary["run_id"])["tags"]["runner.resumed_from"] == workflow_run
    ran = [r for r in records() if r["tags"].get("runner.step") == "first"]
    assert len([r for r in ran if "runner.cached_from" not in r["tags"]]) == 1
    status = run_cli("workflow", "status", workflow_run)
    assert "first: finished" in status.stdout and "last: pending" in status.stdout


def test_cycles_and_bad_references_are_refused_before_anything_runs(tmp_path: Path) -> None:
    sleeper(tmp_path / "p")
    wf = workflow_file(
        tmp_path,
        """
        steps:
          a: {project: p, needs: [b]}
          b: {project: p, needs: [a], parameters: {label: "${{ steps.c.outputs.x }}"}}
          c: {project: p, parameters: {label: "${{ params.nope }}"}}
        """,
    )
    result = run_cli("workflow", "run", str(wf))
    assert result.returncode == 1
    assert "wf.yaml:2:19 steps.a.needs: the steps form a cycle: a → b → a" in result.stderr
    assert (
        "steps.b.parameters.label: ${{ steps.c.outputs.x }} refers to step 'c', which is not "
        "in the needs of step 'b'" in result.stderr
    )
    assert "steps.c.parameters.label: unknown workflow parameter in ${{ params.nope }}" in (
        result.stderr
    )
    assert records() == []


def test_a_missing_output_fails_the_step_that_needs_it(tmp_path: Path) -> None:
    sleeper(tmp_path / "p")
    wf = workflow_file(
        tmp_path,
        """
        steps:
          a: {project: p}
          b: {project: p, needs: [a], parameters: {label: "${{ steps.a.outputs.nothing }}"}}
        """,
    )
    summary = run_json(wf)
    assert summary["returncode"] == 1
    assert summary["steps"]["b"]["reason"].startswith("step 'a' (run ")
    assert "has no output 'nothing'" in summary["steps"]["b"]["reason"]
    assert "(it logged: label)" in summary["steps"]["b"]["reason"]


def test_steps_on_two_backends(tmp_path: Path) -> None:
    from tests.integration.test_backend_plugin import _install_plugin

    env = _install_plugin(tmp_path / "site")
    sleeper(tmp_path / "p")
    wf = workflow_file(
        tmp_path,
        """
        steps:
          here: {project: p, parameters: {label: here}}
          there: {project: p, needs: [here], backend: tiny, parameters: {label: there}}
        """,
    )
    summary = run_json(wf, env=env)
    assert summary["returncode"] == 0, summary["stderr"]
    here, there = (record(summary["steps"][s]["run_id"]) for s in ("here", "there"))
    assert (here["backend"], there["backend"]) == ("local", "tiny")
    from runner.home import run_artifacts_dir

    log = (run_artifacts_dir(there["run_id"]) / "output.log").read_text()
    assert "[tiny] done there" in log


def test_sweep_grid_children_summary_and_best_run(tmp_path: Path) -> None:
    write_project(
        tmp_path / "t",
        {
            "MLproject": """
                entry_points:
                  train:
                    parameters: {alpha: float, l1: int}
                    command: "python train.py {alpha} {l1}"
            """,
            "train.py": """
                import sys, runner_tracking as t
                t.log_metric("loss", (float(sys.argv[1]) - 0.3) ** 2 + int(sys.argv[2]))
            """,
        },
    )
    args = ["run", str(tmp_path / "t"), "-e", "train", "-P", "alpha=0.1,0.3,0.5", "-P", "l1=0,1"]
    result = run_cli(*args, "--sweep", "grid", "--max-parallel", "3", "--metric", "loss")
    assert result.returncode == 0, result.stderr
    runs = records()
    [parent] = [r for r in runs if r["tags"].get("runner.kind") == "sweep"]
    children = [r for r in runs if r["parent_run_id"] == parent["run_id"]]
    assert sorted((c["parameters"]["alpha"], c["parameters"]["l1"]) for c in children) == [
        (a, l) for a in ("0.1", "0.3", "0.5") for l in ("0", "1")
    ]
    best = next(c for c in children if c["parameters"] == {"alpha": "0.3", "l1": "0"})
    assert parent["tags"]["runner.sweep.best_run"] == best["run_id"]
    table = result.stdout.splitlines()
    assert table[0].split() == ["CHILD", "STATUS", "RUN", "ID", "loss"]
    assert table[1].startswith("002:alpha=0.3,l1=0") and table[-1].startswith(
        "best: run " + best["run_id"]
    )
    status = run_cli("workflow", "status", parent["run_id"])
    assert status.stdout.splitlines()[0] == f"sweep sweep-train ({parent['run_id']}): FINISHED"
    resume = run_cli("workflow", "resume", parent["run_id"])  # nothing left to run
    assert resume.returncode == 0, resume.stderr
    again = resume.stdout.splitlines()
    assert again[0].split() == table[0].split() and again[1].startswith("002:alpha=0.3,l1=0")
    assert again[-1].startswith("best: run ") and "(loss = 0)" in again[-1]
    not_a_workflow = run_cli("workflow", "status", children[0]["run_id"])
    assert f"error: run {children[0]['run_id']} is not a workflow run" in not_a_workflow.stderr
    # the same sweep again: every child is reused from the store
    again = run_cli(*args, "--sweep", "grid", "--metric", "loss", "--maximize")
    assert again["returncode"] if False else again.returncode == 0
    assert again.stdout.splitlines()[1].startswith(("001:alpha=0.1,l1=1", "005:alpha=0.5,l1=1"))
    assert again.stderr.count("cached from") == 6


def test_sweep_random_is_reproducible_with_a_seed(tmp_path: Path) -> None:
    sleeper(tmp_path / "p")
    args = ["run", str(tmp_path / "p"), "-P", "seconds=uniform(0,0.1)", "--sweep", "random"]
    first = run_cli(*args, "--samples", "3", "--seed", "7")
    assert first.returncode == 0, first.stderr
    second = run_cli(*args, "--samples", "3", "--seed", "7", "--json")
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout.splitlines()[-1])
    assert [row["status"] for row in summary["summary"]] == ["cached"] * 3
    assert record(summary["run_id"])["entry_point"] == "sweep"
    grid = run_cli(*args[:-1], "grid")
    assert grid.returncode == 2
    assert "--sweep grid needs lists of values; seconds is a distribution" in grid.stderr


def test_without_sweep_a_comma_value_is_one_string(tmp_path: Path) -> None:
    sleeper(tmp_path / "p")
    result = run_cli("run", str(tmp_path / "p"), "-P", "label=1,2")
    assert result.returncode == 0, result.stderr
    [run] = records()
    assert run["parameters"]["label"] == "1,2"
    alone = run_cli("run", str(tmp_path / "p"), "--seed", "0")
    assert alone.returncode == 2
    assert "--seed is an option of --sweep grid|random" in alone.stderr
    detached = run_cli("run", str(tmp_path / "p"), "-P", "label=1,2", "--sweep", "grid", "--detach")
    assert detached.returncode == 2
    assert "--detach cannot be combined with --sweep" in detached.stderr
    assert len(records()) == 1  # nothing more was recorded


def test_the_multistep_sample_passes_its_data_set_between_steps() -> None:
    sample = Path(__file__).resolve().parents[2] / "sample_projects" / "multistep_workflow"
    summary = run_json(sample / "workflow.yaml", "-P", "max_rows=500")
    assert summary["returncode"] == 0, summary["stderr"]
    evaluate = record(summary["steps"]["evaluate"]["run_id"])
    etl_id = summary["steps"]["etl"]["run_id"]
    assert evaluate["parameters"]["data"] == f"runs:/{etl_id}/dataset"
    assert evaluate["environment"]["manager"] == "uv"
    assert float(evaluate["tags"]["runner.output.test_mse"]) < 0.1
    again = run_json(sample / "workflow.yaml", "-P", "max_rows=500")
    assert {s["status"] for s in again["steps"].values()} == {"cached"}
    listing = run_cli("runs", "list").stdout.splitlines()
    assert listing[0].split()[-1] == "PARENT"
    child = next(line for line in listing if again["steps"]["etl"]["run_id"][:12] in line)
    assert child.split()[-1] == again["run_id"][:12]


def test_python_api_and_runner_run_inside_an_entry_point_link_children(tmp_path: Path) -> None:
    sleeper(tmp_path / "p")
    write_project(
        tmp_path / "driver",
        {
            "MLproject": """
                entry_points:
                  main:
                    command: "python driver.py"
            """,
            "driver.py": f"""
                import runner
                child = runner.run({str(tmp_path / "p")!r}, parameters={{"label": "c"}})
                flow = runner.workflow({str(tmp_path / "wf.yaml")!r})
                print("CHILD", child.status().value, "FLOW", flow.status().value)
            """,
        },
    )
    workflow_file(tmp_path, "steps:\n  only: {project: p}\n")
    result = run_cli("run", str(tmp_path / "driver"))
    assert result.returncode == 0, result.stderr
    assert "CHILD FINISHED FLOW FINISHED" in result.stdout
    runs = records()
    [driver] = [r for r in runs if r["run_name"] and r["command"] == "python driver.py"]
    direct = [r for r in runs if r["parent_run_id"] == driver["run_id"]]
    assert sorted(r["entry_point"] for r in direct) == ["main", "workflow"]
    [flow] = [r for r in direct if r["entry_point"] == "workflow"]
    assert [r["tags"]["runner.step"] for r in runs if r["parent_run_id"] == flow["run_id"]] == [
        "only"
    ]


ARRAY_BACKEND = '''
"""Runs like tiny, and submits a batch's runs in one call, as a Slurm job array would."""
import json, os
from tiny_backend import TinyBackend


class ArrayBackend(TinyBackend):
    name = "array"
    batches = True

    def prepare(self, request):
        request.batch.join({"run_id": request.run_id})
        request.batch.gather()
        return super().prepare(request)

    def launch(self, prepared):
        batch = prepared.request.batch
        batch.submit_once(batch.gather(), self.submit)
        return super().launch(prepared)

    def submit(self, members):
        with open(os.environ["ARRAY_LOG"], "a") as log:
            log.write(json.dumps([members[i]["run_id"] for i in sorted(members)]) + "\\n")
        return {index: f"task-{index}" for index in members}


class NeutralBackend(TinyBackend):
    name = "neutral"
    result_neutral_config = frozenset({"tag"})  # its tag never changes what a run computes
'''


def install_array_backends(site: Path) -> dict[str, str]:
    from tests.integration.test_backend_plugin import _install_plugin

    env = _install_plugin(site)
    (site / "array_backend.py").write_text(ARRAY_BACKEND)
    points = site / "tiny_backend-0.1.dist-info" / "entry_points.txt"
    extra = "array = array_backend:ArrayBackend\nneutral = array_backend:NeutralBackend\n"
    points.write_text(points.read_text() + extra)
    return env


def test_a_backend_that_batches_submits_a_sweeps_children_in_one_call(tmp_path: Path) -> None:
    env = install_array_backends(tmp_path / "site")
    env["ARRAY_LOG"] = str(tmp_path / "array.log")
    sleeper(tmp_path / "p")
    args = ["run", str(tmp_path / "p"), "-P", "label=a,b,c", "--sweep", "grid", "-b", "array"]
    result = run_cli(*args, "--max-parallel", "1", env=env)  # the batch's own limit
    assert result.returncode == 0, result.stderr
    [batch] = [json.loads(line) for line in (tmp_path / "array.log").read_text().splitlines()]
    children = [r for r in records() if r["tags"].get("runner.step")]
    assert sorted(batch) == sorted(r["run_id"] for r in children)
    assert {r["status"] for r in children} == {"FINISHED"} and len(children) == 3


def test_a_batch_member_whose_environment_fails_does_not_hold_up_the_others(
    tmp_path: Path,
) -> None:
    env = install_array_backends(tmp_path / "site")
    env["ARRAY_LOG"] = str(tmp_path / "array.log")
    sleeper(tmp_path / "good")
    write_project(
        tmp_path / "broken",
        {
            "MLproject": "python_env: python_env.yaml\nentry_points: {main: {command: 'true'}}\n",
            "python_env.yaml": "python: '3.11'\ndependencies: ['runner-no-such-package-xyz']\n",
        },
    )
    wf = workflow_file(
        tmp_path,
        """
        steps:
          good: {project: good, parameters: {label: g}}
          broken: {project: broken}
        """,
    )
    # a member is waited for while its supervisor lives: this one withdraws once its build fails
    slow = {**env, "RUNNER_BATCH_WAIT_SECONDS": "600"}
    summary = run_json(
        wf, "-b", "array", "--max-parallel", "1", "--on-failure", "continue", env=slow
    )
    assert summary["returncode"] == 1, summary["stderr"]
    steps = summary["steps"]
    assert (steps["good"]["status"], steps["broken"]["status"]) == ("finished", "failed")
    [batch] = [json.loads(line) for line in (tmp_path / "array.log").read_text().splitlines()]
    assert batch == [steps["good"]["run_id"]]  # submitted alone, without the broken one


def test_a_sweep_killed_midway_resumes_only_the_children_that_did_not_finish(
    tmp_path: Path,
) -> None:
    write_project(
        tmp_path / "p",
        {
            "MLproject": """
                entry_points:
                  main:
                    parameters: {hold: str, label: str}
                    command: "python step.py {hold} {label}"
            """,
            "step.py": """
                import os, sys, time, runner_tracking as t
                while os.path.exists(sys.argv[1] + "-" + sys.argv[2]):
                    time.sleep(0.05)
                t.log_metric("score", len(sys.argv[2]))
            """,
        },
    )
    hold = tmp_path / "hold"
    (tmp_path / "hold-bb").touch()  # child bb waits until this goes
    args = ["run", str(tmp_path / "p"), "-P", f"hold={hold}", "-P", "label=a,bb"]
    proc = _spawn(*args, "--sweep", "grid", "--max-parallel", "2", "--metric", "score")
    held = _wait_for_running(f"001:hold={hold},label=bb")
    _wait_for_status(f"000:hold={hold},label=a", "FINISHED")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert run_cli("runs", "cancel", held["run_id"]).returncode == 0  # it outlived the runner
    (tmp_path / "hold-bb").unlink()
    result = run_cli("workflow", "resume", held["parent_run_id"], "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    steps = summary["steps"]
    assert steps[f"000:hold={hold},label=a"]["status"] == "cached"  # finished before the kill
    assert steps[f"001:hold={hold},label=bb"]["status"] == "finished"  # run again
    assert [(row["status"], row["metric"]) for row in summary["summary"]] == [
        ("cached", 1.0),
        ("finished", 2.0),
    ]
    resumed = record(summary["run_id"])
    assert resumed["tags"]["runner.resumed_from"] == held["parent_run_id"]
    assert resumed["tags"]["runner.kind"] == "sweep"
    assert resumed["tags"]["runner.sweep.best_run"] == summary["summary"][0]["run_id"]


def _wait_for_status(step: str, status: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in records() if r["tags"].get("runner.step") == step]
        if found and found[0]["status"] == status:
            return
        time.sleep(0.2)
    raise AssertionError(f"step {step} never reached {status}")


def test_live_view_on_a_terminal_shows_states_times_and_output_tails(tmp_path: Path) -> None:
    from tests.integration.test_progress_tty import _run_on_a_terminal

    write_project(
        tmp_path / "talk",
        {
            "MLproject": 'entry_points:\n  main: {command: "python talk.py"}\n',
            "talk.py": "import time\nprint('working on it', flush=True)\ntime.sleep(1.5)\n",
        },
    )
    sleeper(tmp_path / "p")
    wf = workflow_file(
        tmp_path,
        """
        steps:
          talk: {project: talk}
          after: {project: p, needs: [talk]}
        """,
    )
    code, screen = _run_on_a_terminal("workflow", "run", str(wf))
    assert code == 0, screen
    assert "\x1b[" in screen  # the table is redrawn in place
    assert "| working on it" in screen  # the running step's last output line
    assert "  talk   running" in screen and "  after  pending" in screen
    assert "  after  finished" in screen.split("workflow run")[0]


def test_git_project_key_covers_commits_edits_and_new_files(tmp_path: Path) -> None:
    import subprocess

    project = sleeper(tmp_path / "p")
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    subprocess.run(["git", "-C", str(project), "add", "."], check=True)
    subprocess.run(["git", "-C", str(project), "commit", "-qm", "one"], check=True)
    wf = workflow_file(tmp_path, "steps:\n  a: {project: p}\n")
    keys = [run_json(wf)["steps"]["a"]["cache_key"]]
    assert run_json(wf)["steps"]["a"]["status"] == "cached"  # a clean tree: the commit decides
    (project / "extra.py").write_text("print('new')\n")  # untracked: not in git diff HEAD
    new_file = run_json(wf)
    assert new_file["steps"]["a"]["status"] == "finished"
    keys.append(new_file["steps"]["a"]["cache_key"])
    (project / "step.py").write_text((project / "step.py").read_text() + "# edited\n")
    edited = run_json(wf)
    assert edited["steps"]["a"]["status"] == "finished"
    keys.append(edited["steps"]["a"]["cache_key"])
    assert len(set(keys)) == 3
    assert record(edited["steps"]["a"]["run_id"])["source"]["dirty"] is True


def test_backend_config_counts_unless_the_backend_calls_it_result_neutral(tmp_path: Path) -> None:
    env = install_array_backends(tmp_path / "site")
    sleeper(tmp_path / "p")
    statuses = {}
    for backend in ("tiny", "neutral"):
        for tag in ("a", "b"):
            wf = workflow_file(tmp_path, f"steps:\n  s: {{project: p, backend: {backend}, "
                               f"backend_config: {{tag: {tag}}}}}\n")  # fmt: skip
            statuses[(backend, tag)] = run_json(wf, env=env)["steps"]["s"]["status"]
    assert statuses == {
        ("tiny", "a"): "finished",
        ("tiny", "b"): "finished",  # its tag is part of the key
        ("neutral", "a"): "finished",  # another backend: another key
        ("neutral", "b"): "cached",
    }


def test_every_step_is_planned_before_anything_runs(tmp_path: Path) -> None:
    sleeper(tmp_path / "p")
    wf = workflow_file(
        tmp_path,
        """
        steps:
          ok: {project: p}
          typo: {project: p, entry_point: mian}
          bad: {project: p, parameters: {seconds: soon}}
          later: {project: p, needs: [ok], entry_point: nope, parameters: {label: "${{ steps.ok.outputs.label }}"}}
          gone: {project: missing}
        """,
    )
    result = run_cli("workflow", "run", str(wf))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: step typo: Could not find mian among entry points ['main']")
    assert "step bad: parameter 'seconds': expected float, got 'soon'" in lines
    assert any(line.startswith("step later: Could not find nope among") for line in lines)
    assert any(line.startswith("step gone: Could not find project") for line in lines)
    assert lines[-1] == "hint: nothing was run or recorded"
    assert records() == []


def test_a_step_cancelled_on_its_own_is_not_retried(tmp_path: Path) -> None:
    sleeper(tmp_path / "p")
    wf = workflow_file(
        tmp_path,
        """
        steps:
          long: {project: p, parameters: {seconds: 60}, retries: 3, retry_delay: 0}
          other: {project: p, needs: [long]}
        """,
    )
    proc = _spawn("workflow", "run", str(wf), "--json")
    step = _wait_for_running("long")
    assert run_cli("runs", "cancel", step["run_id"]).returncode == 0
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["steps"]["long"]["status"] == "failed"
    assert summary["steps"]["long"]["attempts"] == 1
    assert summary["steps"]["long"]["reason"].startswith("KILLED: ")
    assert summary["steps"]["other"]["status"] == "skipped"
    assert record(summary["run_id"])["status"] == "FAILED"
