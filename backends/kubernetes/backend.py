"""The Kubernetes backend: the entry point as a Job, its image pushed once and named by digest."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from backends.docker.build import HOST_ONLY_VARS, working_dir
from backends.docker.policy import ENV_ALLOW_VAR, allowlist, resolve_environment
from backends.kubernetes.config import CONFIG_SCHEMA, Settings, pod_tracking_uri, settings
from backends.kubernetes.image import LIB_DIR
from backends.kubernetes.manifest import (
    LABEL_MANAGED,
    LABEL_RUN_ID,
    JobInput,
    generated_job,
    job_name,
    load_template,
    templated_job,
    to_yaml,
    validate,
)
from runner.backend import LOST, BaseBackend, ExitInfo, LaunchRequest, Prepared, RunRef, Verdict
from runner.errors import BackendError
from runner.project.records import ProjectSpec
from runner.status import RunStatus

TOKEN_VAR = "RUNNER_TRACKING_TOKEN"
MLFLOW_TOKEN_VAR = "MLFLOW_TRACKING_TOKEN"  # what MLflow's client sends as its Bearer token
# what the run's own variables say that means nothing in a pod (host paths, the journal)
_HOST_ONLY = HOST_ONLY_VARS | {"RUNNER_ARTIFACTS_DIR", "RUNNER_TRACKING_URI", "PYTHONPATH"}


def pod_env(request: LaunchRequest, tracking_uri: str) -> dict[str, str]:
    """The run's variables for a pod: logging goes over HTTP to ``tracking_uri`` (also for code
    written for MLflow), ``runner_tracking`` is importable, then the project's own variables."""
    env = {k: v for k, v in request.env.items() if k not in _HOST_ONLY}
    env.update(
        RUNNER_TRACKING_URI=tracking_uri,
        RUNNER_TRACKING_TRANSPORT="http",
        PYTHONPATH=LIB_DIR,
        MLFLOW_TRACKING_URI=tracking_uri,
        MLFLOW_RUN_ID=request.run_id,
    )
    # a host-side MLflow API's own token means nothing to the server: the pod sends the server's
    env.pop(MLFLOW_TOKEN_VAR, None)
    token = os.environ.get(TOKEN_VAR)
    if token:  # the server's token: in the Job's spec, so readable by whoever reads the Job
        env[TOKEN_VAR] = env[MLFLOW_TOKEN_VAR] = token
    docker_env = request.spec.env.docker
    allowed = allowlist(request.config, "allowed_env", os.environ, ENV_ALLOW_VAR, ",")
    entries = docker_env.environment if docker_env else ()
    return {**env, **resolve_environment(entries, os.environ, allowed)}


def job_manifest(request: LaunchRequest, config: Settings, image: str) -> dict[str, Any]:
    """The Job of ``request`` (from the template when one is configured), validated."""
    tracking = pod_tracking_uri(config.tracking_uri, _store_uri())
    job = JobInput(
        run_id=request.run_id,
        image=image,
        command=request.command,
        env=pod_env(request, tracking),
        working_dir=working_dir(request),
        labels={},
        inputs=request.input_sources,
    )
    if config.template_path:
        manifest = templated_job(load_template(config.template_path), config, job)
    else:
        manifest = generated_job(config, job)
    validate(manifest)
    return manifest


def _store_uri() -> str:
    from runner.home import tracking_uri

    return tracking_uri()


@dataclass(frozen=True)
class KubernetesPrepared(Prepared):
    """The image is pushed and the Job's manifest validated; ``launch`` submits it."""

    manifest: Mapping[str, Any] = field(default_factory=dict)


def _refuse_local_inputs(request: LaunchRequest) -> None:
    """A `path` parameter names a file on this machine: a pod cannot read it, so the run stops
    before an image is built or pushed. A ``runs:/`` input is fine: the pod fetches it."""
    paths = [p for p in request.input_paths if p not in request.input_sources]
    if paths:
        shown = ", ".join(paths[:3]) + (", ..." if len(paths) > 3 else "")
        raise BackendError(
            f"kubernetes backend: path parameters name files on this machine ({shown}), "
            "which a pod cannot read",
            hint="put the files in the project (its folder is copied into the image) and pass "
            "their relative path as a string parameter, or have the entry point download them",
        )


def _refuse_scheduled_inputs(request: LaunchRequest) -> None:
    """A CronJob's pods run the schedule entry, which fetches no ``runs:/`` inputs."""
    if request.input_sources:
        shown = ", ".join(sorted(set(request.input_sources.values())))
        raise BackendError(
            f"kubernetes schedules take no runs:/ inputs ({shown}): only a single run "
            "fetches them in its pod",
            hint="run it with `runner run -b kubernetes`, or have the entry point download them",
        )


class KubernetesBackend(BaseBackend):
    """Runs the entry point as a batch/v1 Job; runs outlive the runner and can be re-attached."""

    name = "kubernetes"
    config_schema: Mapping[str, Any] = CONFIG_SCHEMA
    builds_environment = True  # the lock is installed into the image, as for Docker
    runs_images = True
    queues = True  # a pod may wait unscheduled: the run stays SCHEDULED until it runs
    # the orchestrator's transport stays the journal (nothing is written to it from a pod);
    # pods log over HTTP to the checked ``tracking-uri``, which may differ from the host's store
    tracking = "journal"

    def preflight(self, spec: ProjectSpec, config: Mapping[str, Any]) -> None:
        """Refused before a run exists: no repository, a tracking URI pods cannot reach, an
        unreadable kubeconfig or job template."""
        from backends.kubernetes.client import connect

        checked = settings(config)
        if not checked.repository:
            raise BackendError(
                "the kubernetes backend needs repository-uri: the registry the cluster pulls "
                "the run's image from",
                hint='add "repository-uri": "registry.example.com/team/project" to the config',
            )
        pod_tracking_uri(checked.tracking_uri, _store_uri())
        if checked.template_path:
            load_template(checked.template_path)
        connect(checked).close()

    def prepare(self, request: LaunchRequest) -> KubernetesPrepared:
        from backends.docker.client import api_errors, connect
        from backends.kubernetes.image import pod_image, push

        config = settings(request.config)
        pod_tracking_uri(config.tracking_uri, _store_uri())  # before anything is built
        _refuse_local_inputs(request)
        client = connect(request.config)
        try:
            with api_errors("preparing the image"):
                image, facts = pod_image(client, request)
                facts.update(push(client, image, config.repository or ""))
        finally:
            client.close()
        manifest = job_manifest(request, config, facts["image_ref"])
        facts.update(job_name=manifest["metadata"]["name"], namespace=config.namespace)
        return KubernetesPrepared(request, facts, manifest)

    def launch(self, prepared: Prepared) -> Any:
        if not isinstance(prepared, KubernetesPrepared):
            prepared = self.prepare(prepared.request)
        request = prepared.request
        config = settings(request.config)
        api = _connect(config)
        # watching before the Job exists: every pod is then seen in the order it was created
        handle = _handle(api, config, request.run_id, request.artifacts_dir)
        try:
            submit(api, prepared.manifest, request.run_id)
        except BaseException as exc:
            handle.close(f"the Job was not submitted: {exc}")
            raise
        return handle

    def attach(self, ref: RunRef) -> Any:
        config = settings(ref.config)
        return _handle(_connect(config), config, ref.run_id, ref.artifacts_dir)

    def reconcile(self, refs: Sequence[RunRef]) -> dict[str, Verdict]:
        """Ask the cluster about each run's Job: still running, ended (how), or gone."""
        verdicts: dict[str, Verdict] = dict.fromkeys((r.run_id for r in refs), LOST)
        groups: dict[tuple[Any, ...], list[RunRef]] = {}
        for ref in refs:
            config = settings(ref.config)
            groups.setdefault((config.kubeconfig, config.context, config.namespace), []).append(ref)
        for group in groups.values():
            verdicts.update(_reconcile_group(settings(group[0].config), group))
        return verdicts

    def create_schedule(
        self, name: str, cron: str, request: LaunchRequest, run: Mapping[str, Any]
    ) -> str:
        """A CronJob whose pods record and run this request's command from its pushed image."""
        from backends.kubernetes import schedule

        schedule.cronjob_name(name)  # refused before anything is built
        _refuse_scheduled_inputs(request)
        when = schedule.check_cron(cron)
        prepared = self.prepare(request)
        config = settings(request.config)
        recorded = {**run, "environment": {**run.get("environment", {}), **prepared.facts}}
        wanted = schedule.ScheduleInput(name, when, request.command, recorded)
        manifest = schedule.cronjob_manifest(prepared.manifest, wanted, config)
        schedule.create(_connect(config), manifest)
        return (
            f"schedule {name} created: CronJob {config.namespace}/{manifest['metadata']['name']} "
            f"at '{when}', image {prepared.facts['image_ref']}"
        )

    def list_schedules(self, config: Mapping[str, Any]) -> list[dict[str, str]]:
        from backends.kubernetes import schedule

        checked = settings(config)
        return schedule.listed(_connect(checked), checked)

    def delete_schedule(self, config: Mapping[str, Any], name: str) -> None:
        from backends.kubernetes import schedule

        checked = settings(config)
        schedule.delete(_connect(checked), checked, name)

    def render(self, request: LaunchRequest) -> str:
        """``--dry-run``: the validated manifests, without contacting a cluster or registry."""
        config = settings(request.config)
        image = f"{config.repository}:unbuilt"
        manifest = job_manifest(request, config, image)
        for entry in manifest["spec"]["template"]["spec"]["containers"][0]["env"]:
            if entry["name"] in (TOKEN_VAR, MLFLOW_TOKEN_VAR):
                entry["value"] = "***"  # printed: never the token itself
        note = (
            "# runner --dry-run: nothing was built, pushed or submitted. The image is built\n"
            f"# at submission, pushed to {config.repository} and named by its digest.\n"
        )
        return note + to_yaml([manifest])


def _connect(config: Settings) -> Any:
    from backends.kubernetes.client import connect

    return connect(config)


def submit(api: Any, manifest: Mapping[str, Any], run_id: str) -> None:
    """Create the Job; a 409 for a Job of the same run means it was already submitted."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    from backends.kubernetes.client import api_errors

    batch = client.BatchV1Api(api)
    namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    with api_errors(f"submitting Job {name}", api):
        try:
            batch.create_namespaced_job(namespace, dict(manifest))
        except ApiException as exc:
            if exc.status != 409:
                raise
            existing = batch.read_namespaced_job(name, namespace)
            if (existing.metadata.labels or {}).get(LABEL_RUN_ID) != run_id:
                raise


def _handle(api: Any, config: Settings, run_id: str, artifacts_dir: Any) -> Any:
    from backends.kubernetes.handle import JobHandle, JobRef

    ref = JobRef(
        api, config.namespace, job_name(run_id), run_id, artifacts_dir, config.pending_timeout
    )
    return JobHandle(ref)


def _reconcile_group(config: Settings, refs: Sequence[RunRef]) -> dict[str, Verdict]:
    """One list of Jobs and one of pods per namespace, however many runs."""
    from kubernetes import client

    from backends.kubernetes.client import api_errors
    from backends.kubernetes.status import job_outcome

    api = _connect(config)
    selector = f"{LABEL_MANAGED}=true"
    with api_errors("asking the cluster about its Jobs", api):
        jobs = client.BatchV1Api(api).list_namespaced_job(config.namespace, label_selector=selector)
        pods = client.CoreV1Api(api).list_namespaced_pod(config.namespace, label_selector=selector)
    by_run = {(j.metadata.labels or {}).get(LABEL_RUN_ID): j for j in jobs.items}
    verdicts: dict[str, Verdict] = {}
    for ref in refs:
        job = by_run.get(ref.run_id)
        if job is None:
            verdicts[ref.run_id] = LOST
            continue
        mine = [p for p in pods.items if (p.metadata.labels or {}).get(LABEL_RUN_ID) == ref.run_id]
        verdicts[ref.run_id] = job_outcome(job, mine) or ExitInfo(_live_status(mine))
    return verdicts


def _live_status(pods: Sequence[Any]) -> RunStatus:
    """RUNNING once a pod of the Job left Pending; SCHEDULED while none did."""
    phases = {pod.status.phase for pod in pods if pod.status}
    return RunStatus.RUNNING if phases & {"Running", "Succeeded", "Failed"} else RunStatus.SCHEDULED
