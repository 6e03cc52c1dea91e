"""Kubernetes manifests: first-class keys, MLflow's template substitution, strict schemas."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from backends.kubernetes.config import CONFIG_SCHEMA, pod_tracking_uri, seconds, settings
from backends.kubernetes.manifest import (
    SCHEMA_VERSIONS,
    JobInput,
    generated_job,
    job_name,
    load_template,
    templated_job,
    validate,
)
from runner.errors import BackendError

RUN_ID = "0466787b516743e99f9bedbccd9f82d3"
FULL_CONFIG: dict[str, Any] = {
    "namespace": "ml",
    "repository-uri": "registry.example.internal/team/proj",
    "resources": {"cpu": "2", "memory": "4Gi", "gpu": 1, "gpu-vendor": "nvidia"},
    "node_selector": {"pool": "gpu"},
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
    ],
    "image_pull_secrets": ["regcred"],
    "service_account": "trainer",
    "retries": 2,
    "timeout": "2h",
    "pending_timeout": "10m",
    "ttl_after_finished": 3600,
}
# MLflow's documented kube-job-template-path example, as users have it today
MLFLOW_TEMPLATE = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: "{replaced with MLflow Project name}"
  namespace: mlflow
spec:
  ttlSecondsAfterFinished: 100
  backoffLimit: 0
  template:
    spec:
      containers:
        - name: "{replaced with MLflow Project name}"
          image: "{replaced with URI of Docker image created during Project execution}"
          command: ["{replaced with MLflow Project entry point command}"]
          env:
            - name: MLFLOW_TRACKING_USERNAME
              valueFrom:
                secretKeyRef: {name: mlflow-secret, key: username}
          resources:
            limits: {memory: 512Mi}
            requests: {memory: 256Mi}
      restartPolicy: Never
"""


def _input(command: str = "python train.py --alpha 0.5") -> JobInput:
    return JobInput(
        run_id=RUN_ID,
        image="registry.example.internal/team/proj@sha256:" + "a" * 64,
        command=command,
        env={"RUNNER_RUN_ID": RUN_ID, "RUNNER_TRACKING_URI": "http://tracking.internal:5000"},
        working_dir="/runner/project",
        labels={},
    )


def _generated(config: dict[str, Any]) -> dict[str, Any]:
    return generated_job(settings(config), _input())


def test_first_class_keys_land_in_the_job() -> None:
    job = _generated(FULL_CONFIG)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"},
        "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
    }
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["tolerations"] == [
        FULL_CONFIG["tolerations"][0],
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    ]
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["serviceAccountName"] == "trainer"
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 2
    assert job["spec"]["activeDeadlineSeconds"] == 7200
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600
    assert job["spec"]["podFailurePolicy"]["rules"][0] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    assert job["metadata"] == {
        "name": f"runner-{RUN_ID}",
        "namespace": "ml",
        "labels": {"runner.dev/run-id": RUN_ID, "runner.dev/managed": "true"},
    }


def test_amd_gpus_use_their_own_resource_and_toleration() -> None:
    job = _generated({"resources": {"gpu": 2, "gpu-vendor": "amd"}})
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"] == {"limits": {"amd.com/gpu": "2"}}
    assert pod["tolerations"] == [
        {"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("config", [{}, FULL_CONFIG], ids=["defaults", "every-key"])
def test_every_generated_manifest_validates_strictly(version: str, config: dict[str, Any]) -> None:
    job = _generated(config)
    assert kubernetes_validate.validate(job, version, strict=True) == version


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_the_templated_manifest_validates_strictly(version: str, tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(MLFLOW_TEMPLATE)
    job = templated_job(load_template(str(path)), settings({}), _input())
    assert kubernetes_validate.validate(job, version, strict=True) == version


def test_template_mode_follows_mlflows_substitution(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(MLFLOW_TEMPLATE)
    job = templated_job(load_template(str(path)), settings({}), _input())
    container = job["spec"]["template"]["spec"]["containers"][0]
    # replaced: the Job's name, the container's name, image and command
    assert job["metadata"]["name"] == f"runner-{RUN_ID}"
    assert container["image"] == _input().image
    assert container["command"][-1] == "python train.py --alpha 0.5"
    # env appended after the template's own entries, which stay as written
    assert container["env"][0]["name"] == "MLFLOW_TRACKING_USERNAME"
    assert container["env"][0]["valueFrom"] == {
        "secretKeyRef": {"name": "mlflow-secret", "key": "username"}
    }
    assert [e["name"] for e in container["env"][1:]] == ["RUNNER_RUN_ID", "RUNNER_TRACKING_URI"]
    # everything else is the user's
    assert job["metadata"]["namespace"] == "mlflow"
    assert job["spec"]["ttlSecondsAfterFinished"] == 100
    assert job["spec"]["backoffLimit"] == 0
    assert container["resources"] == {
        "limits": {"memory": "512Mi"},
        "requests": {"memory": "256Mi"},
    }


def test_the_command_runs_through_a_shell_with_local_quoting() -> None:
    command = """python -c 'import sys; print(sys.argv[1:])' "a b" 'c|d' | cat"""
    job = generated_job(settings({}), _input(command))
    argv = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert argv[:2] == ["/bin/sh", "-c"]
    ran = subprocess.run(argv, capture_output=True, text=True, check=True)  # the container's argv
    assert ran.stdout == "['a b', 'c|d']\n"


def test_a_template_that_is_not_a_job_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n")
    with pytest.raises(BackendError) as refused:
        load_template(str(path))
    assert (
        refused.value.message
        == f"kube-job-template-path {str(path)!r} is not a Job manifest (kind: Job)"
    )


def test_a_template_with_unknown_fields_fails_validation_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(MLFLOW_TEMPLATE.replace("backoffLimit: 0", "backoffLimt: 0"))
    job = templated_job(load_template(str(path)), settings({}), _input())
    with pytest.raises(BackendError) as refused:
        validate(job)
    assert refused.value.message.startswith("the Job is invalid for Kubernetes 1.29: spec: ")
    assert "backoffLimt" in refused.value.message


def test_a_template_whose_pods_restart_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(MLFLOW_TEMPLATE.replace("restartPolicy: Never", "restartPolicy: Always"))
    job = templated_job(load_template(str(path)), settings({}), _input())
    with pytest.raises(BackendError) as refused:
        validate(job)
    assert refused.value.message == (
        "the job template's restartPolicy must be Never or OnFailure (it is Always)"
    )


@pytest.mark.parametrize(
    ("run_id", "expected"),
    [
        (RUN_ID, f"runner-{RUN_ID}"),
        ("Run_ID.With Caps", "runner-run-id-with-caps"),
    ],
)
def test_job_names_are_dns_labels_from_the_run_id(run_id: str, expected: str) -> None:
    assert job_name(run_id) == expected


def test_long_run_ids_are_cut_to_63_characters_and_stay_distinct() -> None:
    first, second = job_name("x" * 100 + "1"), job_name("x" * 100 + "2")
    assert len(first) == len(second) == 63
    assert first != second


@pytest.mark.parametrize(
    ("text", "expected"), [("90s", 90), ("10m", 600), ("2h", 7200), (45, 45), ("1.5m", 90)]
)
def test_durations(text: Any, expected: int) -> None:
    assert seconds(text, "timeout") == expected


def test_a_bad_duration_says_how_to_write_one() -> None:
    with pytest.raises(BackendError) as refused:
        seconds("soon", "timeout")
    assert refused.value.message == "timeout: 'soon' is not a duration"
    assert refused.value.hint == "write 90s, 10m, 2h or a number of seconds"


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("sqlite:////home/u/.runner/runner.db", "a pod needs an http(s) tracking server"),
        ("http://127.0.0.1:5000", "a loopback address in a pod is the pod itself"),
        ("http://localhost:5000", "a loopback address in a pod is the pod itself"),
        ("http://[::1]:5000", "a loopback address in a pod is the pod itself"),
    ],
)
def test_tracking_uris_a_pod_cannot_reach_are_refused(uri: str, why: str) -> None:
    with pytest.raises(BackendError) as refused:
        pod_tracking_uri(uri, "sqlite:///x.db")
    assert refused.value.message.startswith(f"pods cannot log to tracking-uri {uri!r}: {why}")
    assert "runner server" in (refused.value.hint or "")


def test_without_a_tracking_uri_the_store_must_be_a_reachable_server() -> None:
    with pytest.raises(BackendError) as refused:
        pod_tracking_uri(None, "sqlite:////tmp/runner.db")
    assert refused.value.message.startswith(
        "pods cannot log to the tracking store (RUNNER_TRACKING_URI) 'sqlite:////tmp/runner.db'"
    )
    assert (
        pod_tracking_uri(None, "http://tracking.internal:5000") == "http://tracking.internal:5000"
    )


def test_the_config_schema_takes_mlflows_keys_unchanged() -> None:
    import jsonschema

    mlflow_config = {
        "kube-context": "docker-for-desktop",
        "repository-uri": "username/mlflow-kubernetes-example",
        "kube-job-template-path": "/Users/username/path/to/kubernetes_job_template.yaml",
    }
    jsonschema.Draft202012Validator(CONFIG_SCHEMA).validate(mlflow_config)
    errors = list(jsonschema.Draft202012Validator(CONFIG_SCHEMA).iter_errors({"retires": 1}))
    assert [e.message for e in errors] == [
        "Additional properties are not allowed ('retires' was unexpected)"
    ]


def test_the_sample_config_is_valid_and_gives_a_valid_job() -> None:
    import jsonschema

    from runner.execution.plan import parse_backend_config

    sample = Path(__file__).parents[2] / "sample_projects" / "docker_project" / "k8s.yaml"
    config = parse_backend_config(str(sample))
    jsonschema.Draft202012Validator(CONFIG_SCHEMA).validate(config)
    job = generated_job(settings(config), _input())
    validate(job)
    assert job["spec"]["activeDeadlineSeconds"] == 1800
    assert job["spec"]["ttlSecondsAfterFinished"] == 86400
