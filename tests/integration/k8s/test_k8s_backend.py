"""The Kubernetes backend end to end: `runner run -b kubernetes` against the API emulator.

Each test has its own emulated cluster; images are built by the Docker backend's builder,
pushed to a real local registry and run by the emulator's kubelet from ``repo@sha256:``.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner.home import run_artifacts_dir
from tests.helpers import records, run_cli, spawn_cli, write_project
from tests.k8s_emulator import Emulator

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def project(tmp_path: Path, python_image: str) -> Callable[[str], Path]:
    def make(command: str) -> Path:
        return write_project(
            tmp_path / "proj",
            {
                "MLproject": f"""
                    name: k8s-test
                    docker_env:
                      image: {python_image}
                      environment: [["GREETING", "hi from the pod"]]
                    entry_points:
                      main:
                        parameters: {{name: {{type: string, default: world}}}}
                        command: {json.dumps(command)}
                """,
                "probe.py": "import os, sys\n"
                "print('ARGV=' + repr(sys.argv[1:]))\n"
                "print('GREETING=' + os.environ['GREETING'])\n",
            },
        )

    return make


def _run(proj: Path, config: Path, *args: str) -> Any:
    return run_cli("run", str(proj), "-b", "kubernetes", "-c", str(config), *args, timeout=300)


def _wait(predicate: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _running_pod(emulator: Emulator) -> dict[str, Any]:
    def running() -> Any:
        pods = [p for p in emulator.pods() if p["status"].get("phase") == "Running"]
        return pods[0] if pods else None

    found: dict[str, Any] = _wait(running)
    return found


def test_submit_logs_finished_and_the_image_is_named_by_digest(
    project: Callable[[str], Path], config: Callable[..., Path], emulator: Emulator
) -> None:
    proj = project("python probe.py {name} 'a|b' && echo piped | tr a-z A-Z")
    result = _run(proj, config(), "-P", "name=a b; c")
    assert result.returncode == 0, result.stderr
    assert "ARGV=['a b; c', 'a|b']" in result.stdout
    assert "GREETING=hi from the pod" in result.stdout
    assert "PIPED" in result.stdout
    (run,) = records()
    assert run["status"] == "FINISHED"
    assert run["exit_code"] == 0
    env = run["environment"]
    assert env["image_ref"] == f"{env['image_repository']}@{env['image_digest']}"
    assert env["image_digest"].startswith("sha256:")
    assert env["image_pushed"] == "yes"
    (pod,) = emulator.pods()
    assert pod["spec"]["containers"][0]["image"] == env["image_ref"]
    attempt = run_artifacts_dir(run["run_id"]) / "output.attempt-1.log"
    assert "GREETING=hi from the pod" in attempt.read_text()


def test_an_unchanged_project_runs_again_without_a_push(
    project: Callable[[str], Path], config: Callable[..., Path], emulator: Emulator
) -> None:
    proj = project("python probe.py {name}")
    cfg = config()
    assert _run(proj, cfg).returncode == 0
    second = _run(proj, cfg)
    assert second.returncode == 0, second.stderr
    newest, oldest = records()
    assert oldest["environment"]["image_pushed"] == "yes"
    assert newest["environment"]["image_pushed"] == "no (the registry already had it)"
    assert newest["environment"]["image_built"] == "none"
    assert newest["environment"]["image_ref"] == oldest["environment"]["image_ref"]


def test_retries_keep_every_attempts_log_and_fail_with_backoff_limit(
    project: Callable[[str], Path], config: Callable[..., Path], emulator: Emulator
) -> None:
    proj = project("echo attempt $(cat /proc/sys/kernel/random/uuid); exit 3")
    result = _run(proj, config(retries=2))
    assert result.returncode == 1
    (run,) = records()
    assert run["status"] == "FAILED"
    assert run["exit_code"] == 3
    assert (
        run["failure_reason"] == "BackoffLimitExceeded: Job has reached the specified backoff limit"
    )
    logs = [run_artifacts_dir(run["run_id"]) / f"output.attempt-{n}.log" for n in (1, 2, 3)]
    texts = [path.read_text() for path in logs]
    assert all(text.startswith("attempt ") for text in texts)
    assert len(set(texts)) == 3  # three different pods, three different outputs
    assert not (run_artifacts_dir(run["run_id"]) / "output.attempt-4.log").exists()
    assert len(emulator.pods()) == 3


def test_an_evicted_pod_does_not_consume_a_retry(
    project: Callable[[str], Path], config: Callable[..., Path], emulator: Emulator
) -> None:
    proj = project("if [ -e /tmp/never ]; then exit 9; fi; echo started; sleep 2; echo done")
    runner = spawn_cli("run", str(proj), "-b", "kubernetes", "-c", str(config(retries=0)))
    first = _running_pod(emulator)
    emulator.evict("default", first["metadata"]["name"])
    _out, err = runner.communicate(timeout=120)
    assert runner.returncode == 0, err
    (run,) = records()
    assert run["status"] == "FINISHED"
    pods = {p["metadata"]["name"]: p["status"]["phase"] for p in emulator.pods()}
    assert pods[first["metadata"]["name"]] == "Failed"
    assert sorted(pods.values()) == ["Failed", "Succeeded"]
    second = run_artifacts_dir(run["run_id"]) / "output.attempt-2.log"
    assert second.read_text() == "started\ndone\n"


def test_a_timeout_fails_the_run_with_deadline_exceeded(
    project: Callable[[str], Path], config: Callable[..., Path], emulator: Emulator
) -> None:
    result = _run(project("echo going; sleep 60"), config(timeout="2s"))
    assert result.returncode == 1
    (run,) = records()
    assert run["status"] == "FAILED"
    assert (
        run["failure_reason"] == "DeadlineExceeded: Job was active longer than specified deadline"
    )
    assert "going" in (run_artifacts_dir(run["run_id"]) / "output.attempt-1.log").read_text()
    _wait(lambda: not emulator.pods(), timeout=30)


def test_unschedulable_past_the_pending_timeout_fails_with_the_reason(
    project: Callable[[str], Path], config: Callable[..., Path], emulator: Emulator
) -> None:
    cfg = config(resources={"gpu": 1}, pending_timeout="2s")
    result = _run(project("echo never"), cfg)
    assert result.returncode == 1
    (run,) = records()
    assert run["status"] == "FAILED"
    assert run["failure_reason"] == (
        "Unschedulable: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu. "
        "(pending for longer than 2s)"
    )
    _wait(lambda: not emulator.store.list("Job", None)[0], timeout=30)  # not left pending
    _wait(lambda: not emulator.pods(), timeout=30)


def test_cancel_deletes_the_job_with_background_propagation(
    project: Callable[[str], Path], config: Callable[..., Path], emulator: Emulator
) -> None:
    proj = project("echo started; sleep 120")
    detached = _run(proj, config(), "--detach")
    assert detached.returncode == 0, detached.stderr
    run_id = detached.stdout.strip()
    # --detach returns once the Job is created, not before the image is built and pushed
    (job,) = emulator.store.list("Job", None)[0]
    assert job["metadata"]["labels"]["runner.dev/run-id"] == run_id
    assert (run_artifacts_dir(run_id) / "launched.json").is_file()
    _running_pod(emulator)
    cancelled = run_cli("runs", "cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr
    (run,) = records()
    assert run["status"] == "KILLED"
    deletes = [r for r in emulator.requests if r.method == "DELETE" and "/jobs/" in r.path]
    assert deletes
    assert all(r.body.get("propagationPolicy") == "Background" for r in deletes)
    assert emulator.store.list("Job", None)[0] == []
    _wait(lambda: not emulator.pods(), timeout=30)


def test_a_killed_runner_leaves_the_job_running_and_a_new_process_records_its_outcome(
    project: Callable[[str], Path], config: Callable[..., Path], emulator: Emulator
) -> None:
    proj = project("echo first; sleep 3; echo second; exit 4")
    detached = _run(proj, config(), "--detach")
    assert detached.returncode == 0, detached.stderr
    run_id = detached.stdout.strip()
    _running_pod(emulator)
    from runner.store.open import open_store

    live = open_store().live_run(run_id)
    assert live is not None and live.runner_pid is not None
    os.kill(live.runner_pid, signal.SIGKILL)
    _wait(lambda: not _alive(live.runner_pid))
    shown = run_cli("runs", "show", run_id, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["status"] == "RUNNING"  # not FAILED: the Job still runs
    followed = run_cli("runs", "logs", run_id, "--follow")
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == "first\nsecond\n"
    final = json.loads(run_cli("runs", "show", run_id, "--json").stdout)
    assert final["status"] == "FAILED"
    assert final["exit_code"] == 4
    assert final["failure_reason"].startswith("BackoffLimitExceeded")
    assert (run_artifacts_dir(run_id) / "output.log").read_text() == "first\nsecond\n"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_watches_that_drop_or_expire_resume_and_the_run_still_ends(
    project: Callable[[str], Path], config: Callable[..., Path], emulator: Emulator
) -> None:
    proj = project("echo one; sleep 2; echo two")
    runner = spawn_cli("run", str(proj), "-b", "kubernetes", "-c", str(config()), "-q")
    _running_pod(emulator)
    emulator.compact()  # a resumed watch gets 410 Gone: the handle must list again
    emulator.drop_watches()
    out, err = runner.communicate(timeout=120)
    assert runner.returncode == 0, err
    assert out == "one\ntwo\n"
    job_calls = [
        r.query.get("watch", "list")
        for r in emulator.requests
        if r.method == "GET" and r.path.endswith("/jobs")
    ]
    # list, watch; dropped: watch again, 410 Gone: list again, watch from there
    assert job_calls[:2] == ["list", "true"]
    assert job_calls[2:5] == ["true", "list", "true"]


def test_a_tracking_uri_pods_cannot_reach_is_refused_before_anything_runs(
    project: Callable[[str], Path], config: Callable[..., Path], emulator: Emulator
) -> None:
    result = _run(project("true"), config(**{"tracking-uri": "http://127.0.0.1:5000"}))
    assert result.returncode == 1
    assert "pods cannot log to tracking-uri 'http://127.0.0.1:5000'" in result.stderr
    assert "runner server" in result.stderr
    assert records() == []
    assert not any(r.method == "POST" for r in emulator.requests)


def test_dry_run_prints_the_validated_job_and_submits_nothing(
    project: Callable[[str], Path], config: Callable[..., Path], emulator: Emulator
) -> None:
    import yaml

    cfg = config(
        resources={"cpu": "2", "memory": "4Gi", "gpu": 1},
        node_selector={"pool": "gpu"},
        image_pull_secrets=["regcred"],
        retries=1,
    )
    result = _run(project("python probe.py {name}"), cfg, "--dry-run", "-P", "name=x")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# runner --dry-run: nothing was built, pushed or submitted.")
    (job,) = yaml.safe_load_all(result.stdout)
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"][-1] == "python probe.py x"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert job["spec"]["backoffLimit"] == 1
    assert records() == []
    assert emulator.requests == []


def test_runner_tracking_in_a_pod_logs_into_the_run_over_http(
    project: Callable[[str], Path],
    config: Callable[..., Path],
    emulator: Emulator,
    host_address: str,
) -> None:
    """No MLflow in the image: runner_tracking (put in every pod image) posts to the server."""
    from tests.live_server import free_port, server_process

    token, port, host = "k8s-test-token", free_port(), host_address
    script = (
        "import runner_tracking as t; t.log_param('alpha', '0.1'); "
        "[t.log_metric('loss', 1.0 / s, step=s) for s in (1, 2, 4)]; print('logged')"
    )
    proj = project(f'python -c "{script}"')
    args = ("--host", "0.0.0.0", "--token", token, "--allowed-host", host)
    with server_process(port, args=args, token=token):
        cfg = config(**{"tracking-uri": f"http://{host}:{port}"})
        result = run_cli(
            "run",
            str(proj),
            "-b",
            "kubernetes",
            "-c",
            str(cfg),
            env={"RUNNER_TRACKING_TOKEN": token},
            timeout=300,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "logged" in result.stdout
    assert "runner_tracking:" not in result.stdout + result.stderr  # no warning: all was sent
    (run,) = records()
    assert run["metrics"]["loss"] == 0.25  # the latest step
    shown = json.loads(run_cli("runs", "show", run["run_id"], "--json").stdout)
    assert shown["parameters"] == {"name": "world", "alpha": "0.1"}


def test_a_schedule_firing_twice_gives_two_recorded_runs(
    project: Callable[[str], Path],
    config: Callable[..., Path],
    emulator: Emulator,
    host_address: str,
) -> None:
    from tests.live_server import free_port, server_process

    token, port, host = "k8s-test-token", free_port(), host_address
    script = "import runner_tracking as t; t.log_metric('loss', 0.5); print('nightly ran')"
    proj = project(f'python -c "{script}"')
    args = ("--host", "0.0.0.0", "--token", token, "--allowed-host", host)
    cfg = config(**{"tracking-uri": f"http://{host}:{port}"})
    env = {"RUNNER_TRACKING_TOKEN": token}
    with server_process(port, args=args, token=token):
        created = run_cli(
            "schedule", "create", "nightly", "--cron", "0 3 * * *", str(proj),
            "-P", "name=x", "-c", str(cfg), env=env, timeout=300,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        assert created.stdout.startswith(
            "schedule nightly created: CronJob default/runner-nightly at '0 3 * * *', image "
        )
        assert records() == []  # nothing runs until the cluster fires it
        jobs = [emulator.fire("default", "runner-nightly")["metadata"]["name"] for _ in (1, 2)]

        def both_done() -> bool:
            found = {j["metadata"]["name"]: j for j in emulator.store.list("Job", None)[0]}
            return all(
                any(c["type"] == "Complete" for c in found[j]["status"].get("conditions") or [])
                for j in jobs
            )

        _wait(both_done, timeout=120)
        runs = records()
    assert len(runs) == 2
    assert {r["status"] for r in runs} == {"FINISHED"}
    assert {r["tags"]["runner.schedule"] for r in runs} == {"nightly"}
    assert {r["tags"]["runner.k8s_job"] for r in runs} == {f"default/{j}" for j in jobs}
    assert all(r["run_name"].startswith("nightly-") for r in runs)
    assert all(r["parameters"] == {"name": "x"} for r in runs)
    assert all(r["metrics"]["loss"] == 0.5 for r in runs)
    assert runs[0]["environment"]["image_ref"] == runs[1]["environment"]["image_ref"]
    listed = run_cli("schedule", "list", "-c", str(cfg))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split()[:6] == ["nightly", "0", "3", "*", "*", "*"]
    deleted = run_cli("schedule", "delete", "nightly", "-c", str(cfg))
    assert deleted.returncode == 0, deleted.stderr
    assert emulator.store.list("CronJob", None)[0] == []
    again = run_cli("schedule", "delete", "nightly", "-c", str(cfg))
    assert again.returncode == 1
    assert "no schedule 'nightly' in namespace default" in again.stderr


def test_ctrl_c_deletes_the_job_and_the_run_ends_killed(
    project: Callable[[str], Path], config: Callable[..., Path], emulator: Emulator
) -> None:
    proj = project("echo started; sleep 120")
    runner = spawn_cli("run", str(proj), "-b", "kubernetes", "-c", str(config()))
    _running_pod(emulator)
    runner.send_signal(signal.SIGINT)
    _out, err = runner.communicate(timeout=120)
    assert runner.returncode == 130, err
    assert "KILLED (interrupted)" in err
    (run,) = records()
    assert run["status"] == "KILLED"
    assert run["failure_reason"] == "interrupted (Ctrl-C) before the entry point finished"
    deletes = [r for r in emulator.requests if r.method == "DELETE" and "/jobs/" in r.path]
    assert [r.body.get("propagationPolicy") for r in deletes] == ["Background"]
    _wait(lambda: not emulator.pods(), timeout=30)


def test_an_mlflow_job_template_runs_with_its_own_settings_kept(
    project: Callable[[str], Path], config: Callable[..., Path], emulator: Emulator, tmp_path: Path
) -> None:
    template = tmp_path / "job.yaml"
    template.write_text(
        "apiVersion: batch/v1\n"
        "kind: Job\n"
        'metadata: {name: "{replaced with MLflow Project name}", namespace: default}\n'
        "spec:\n"
        "  ttlSecondsAfterFinished: 100\n"
        "  backoffLimit: 0\n"
        "  template:\n"
        "    spec:\n"
        "      containers:\n"
        '        - name: "{replaced with MLflow Project name}"\n'
        '          image: "{replaced with URI of Docker image created during Project execution}"\n'
        '          command: ["{replaced with MLflow Project entry point command}"]\n'
        "          env: [{name: FROM_TEMPLATE, value: kept}]\n"
        "      restartPolicy: Never\n"
    )
    proj = project("echo template=$FROM_TEMPLATE && python probe.py {name}")
    result = _run(proj, config(**{"kube-job-template-path": str(template)}), "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["template=kept", "ARGV=['world']"]
    (job,) = emulator.store.list("Job", None)[0]
    assert job["spec"]["ttlSecondsAfterFinished"] == 100
    (run,) = records()
    assert job["metadata"]["name"] == f"runner-{run['run_id']}"
    assert (
        job["spec"]["template"]["spec"]["containers"][0]["image"] == run["environment"]["image_ref"]
    )


def test_a_job_its_ttl_deletes_at_once_still_records_its_outcome_and_logs(
    project: Callable[[str], Path], config: Callable[..., Path], emulator: Emulator
) -> None:
    result = _run(project("echo kept; exit 5"), config(ttl_after_finished=0), "-q")
    assert result.returncode == 1
    assert result.stdout == "kept\n"
    (run,) = records()
    assert run["exit_code"] == 5
    assert run["failure_reason"].startswith("BackoffLimitExceeded")
    assert (run_artifacts_dir(run["run_id"]) / "output.attempt-1.log").read_text() == "kept\n"
    _wait(lambda: not emulator.store.list("Job", None)[0], timeout=30)  # the TTL removed it


def test_an_unscheduled_pod_keeps_the_run_scheduled_until_it_runs(
    project: Callable[[str], Path], config: Callable[..., Path], emulator: Emulator
) -> None:
    cfg = config(node_selector={"pool": "batch"}, pending_timeout="300s")
    detached = _run(project("echo started; sleep 6; echo done"), cfg, "--detach")
    assert detached.returncode == 0, detached.stderr
    run_id = detached.stdout.strip()

    def unscheduled() -> bool:
        pods = emulator.pods()
        return bool(pods) and all(not p["spec"].get("nodeName") for p in pods)

    _wait(unscheduled, timeout=120)
    time.sleep(1.0)  # a few watchdog ticks while the pod waits
    (run,) = records()
    assert run["status"] == "SCHEDULED"
    emulator.controllers.node_labels["pool"] = "batch"  # the node now fits the selector
    _wait(lambda: records()[0]["status"] == "RUNNING", timeout=60)
    _wait(lambda: records()[0]["status"] == "FINISHED", timeout=120)
    assert "done" in (run_artifacts_dir(run_id) / "output.log").read_text()


def test_path_inputs_are_refused_before_an_image_is_built(
    tmp_path: Path, config: Callable[..., Path], emulator: Emulator, python_image: str
) -> None:
    data = tmp_path / "data.csv"
    data.write_text("1,2\n")
    proj = write_project(
        tmp_path / "paths",
        {
            "MLproject": f"""
                docker_env: {{image: {python_image}}}
                entry_points:
                  main:
                    parameters: {{data: path}}
                    command: "cat {{data}}"
            """
        },
    )
    result = _run(proj, config(), "-P", f"data={data}")
    assert result.returncode == 1
    assert (
        f"kubernetes backend: path parameters name files on this machine ({data}), "
        "which a pod cannot read" in result.stderr
    )
    assert "put the files in the project" in result.stderr
    (run,) = records()
    assert run["status"] == "FAILED" and "which a pod cannot read" in run["failure_reason"]
    assert "image_id" not in run["environment"]  # nothing was built or pushed
    assert not any(r.method == "POST" for r in emulator.requests)
