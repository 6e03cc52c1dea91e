"""The Slurm backend: each run is a batch job (a sweep one job array) on a Slurm cluster.

The environment is built by runner on a path the compute nodes see (RUNNER_SLURM_SHARED_DIR,
default RUNNER_HOME); the job's files (batch script, per-attempt output and exit status) live
there too, and the entry point logs through the journal in the run's artifacts on that path.
Jobs outlive the runner process: any process re-attaches through the run's ``slurm-job.json``.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.slurm import client
from backends.slurm.config import CONFIG_SCHEMA, check_config, sbatch_options
from backends.slurm.handle import JobRecord, SlurmRunHandle
from backends.slurm.script import JobFiles, Task, job_comment, job_name, render_array, render_job
from backends.slurm.state import exit_info
from backends.slurm.watch import job_states
from runner.backend import (
    LOST,
    BaseBackend,
    ExitInfo,
    LaunchRequest,
    Prepared,
    RunRef,
    Transport,
    Verdict,
)
from runner.errors import BackendError
from runner.execution.batch import Payload
from runner.home import runner_home
from runner.project.records import ProjectSpec
from runner.tracking import JOURNAL

SHARED_DIR_VAR = "RUNNER_SLURM_SHARED_DIR"
SUBMIT_TRIES = 3
# a path that becomes an #SBATCH value or a script word must not need quoting there
_PLAIN_PATH = re.compile(r"^[A-Za-z0-9_./+:@%,=-]+$")


def shared_root() -> Path | None:
    """The declared shared path, or None: RUNNER_HOME (with the artifacts) is shared."""
    value = os.environ.get(SHARED_DIR_VAR)
    return Path(value).expanduser().resolve() if value else None


def _artifacts(request: LaunchRequest) -> Path:
    if request.artifacts_dir is None:
        raise BackendError("the slurm backend needs the run's artifacts directory")
    return request.artifacts_dir


def job_root(run_id: str, artifacts: Path) -> Path:
    """Where a run's job keeps its files: the shared path's ``slurm/<run id>``, or the run's
    own artifacts when RUNNER_HOME is what the nodes share."""
    shared = shared_root()
    return shared / "slurm" / run_id if shared else artifacts / "slurm"


def job_files(request: LaunchRequest) -> JobFiles:
    """The run's job files, their folder created here."""
    root = job_root(request.run_id, _artifacts(request))
    root.mkdir(parents=True, exist_ok=True)
    for path in (root, request.work_dir):
        if not _PLAIN_PATH.match(str(path)):
            raise BackendError(
                f"slurm backend: the path {path} has characters an #SBATCH line cannot hold",
                hint=f"use paths of letters, digits and _ . / + - (set {SHARED_DIR_VAR})",
            )
    return JobFiles(root)


def _job_env(request: LaunchRequest, files: JobFiles) -> dict[str, str]:
    """The run's variables; with a shared path of its own, the journal is written there and
    the run's artifacts hold a link to it, so the runner ingests it as usual."""
    env = dict(request.env)
    if shared_root() is None:
        return env
    journal_dir = files.root / "artifacts"
    journal_dir.mkdir(exist_ok=True)
    env["RUNNER_ARTIFACTS_DIR"] = str(journal_dir)
    link = _artifacts(request) / JOURNAL
    if not link.is_symlink():
        link.unlink(missing_ok=True)
        link.symlink_to(journal_dir / JOURNAL)
    return env


def _task(request: LaunchRequest) -> Task:
    files = job_files(request)
    prefix = request.environment.prefix if request.environment is not None else None
    # the node must see the environment and every file a `path` parameter names
    needs = (*((prefix,) if prefix is not None else ()), *map(Path, request.input_paths))
    return Task(request.run_id, request.command, request.work_dir, _job_env(request, files),
                files, needs)  # fmt: skip


def _write_script(path: Path, text: str) -> None:
    # 0600: the command line may hold a secret parameter's value. surrogateescape: a value
    # Python read from non-UTF-8 bytes (an environment variable, an argument) is written back
    # as those bytes, so the job gets exactly what the run was given.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(text)


def submit_once(script: Path, name: str, comment: str, *, look_first: bool = True) -> str:
    """Submit, unless Slurm already has the job: a retried submit (sbatch timed out after
    slurmctld took the job, say, or the launching process died before it kept the job id)
    finds the existing job by its name and comment. ``look_first=False`` skips the lookup
    before a first submit that cannot have a job yet (one squeue call less per run)."""
    for attempt in range(1, SUBMIT_TRIES + 1):
        found = client.find_job(name, comment) if look_first or attempt > 1 else None
        if found is not None:
            return found
        try:
            return client.submit(script)
        except BackendError as exc:
            if "did not answer" not in exc.message or attempt == SUBMIT_TRIES:
                raise BackendError(f"submitting the run's job: {exc.message}") from exc
    raise AssertionError("unreachable")


def check_container_runtime() -> None:
    """``container`` needs the site's OCI runtime (``oci.conf`` beside ``slurm.conf``): without
    it, Slurm 22.05 accepts ``--container`` and runs the job on the host, in no container."""
    conf = Path(os.environ.get("SLURM_CONF") or "/etc/slurm/slurm.conf")
    if not (conf.parent / "oci.conf").is_file():
        raise BackendError(
            f"slurm config key 'container' needs the cluster's container runtime, and there is "
            f"no oci.conf beside {conf}: Slurm would run the job outside any container",
            hint="drop 'container' to run the environment from the shared filesystem, or ask "
            "the cluster's admins to configure Slurm's OCI runtime (oci.conf)",
        )


def _unrecorded_jobs(refs: Sequence[RunRef]) -> dict[str, JobRecord]:
    """Runs whose launching process died between sbatch and keeping the job id: their jobs,
    found by comment in one squeue call, are recorded now so they are not called lost."""
    if not refs:
        return {}
    found = client.jobs_by_comment({job_comment(ref.run_id) for ref in refs})
    records = {}
    for ref in refs:
        job_id = found.get(job_comment(ref.run_id))
        if job_id is not None:
            root = job_root(ref.run_id, ref.artifacts_dir)
            records[ref.run_id] = JobRecord(job_id, str(root), job_name(ref.run_id))
            records[ref.run_id].save(ref.artifacts_dir)
    return records


@dataclass(frozen=True)
class ArrayMember(Prepared):
    """A run of a batch, ready to submit: the batch's members that joined, by index."""

    members: Mapping[int, Payload] = field(default_factory=dict)


def _payload(request: LaunchRequest, task: Task) -> Payload:
    """What another member's process needs to put this run into the array."""
    return {
        "run_id": task.run_id,
        "command": task.command,
        "work_dir": str(task.work_dir),
        "env": dict(task.env),
        "root": str(task.files.root),
        "needs": [str(path) for path in task.needs],
        "artifacts": str(_artifacts(request)),
        "config": dict(request.config),
    }


def _member_task(payload: Payload) -> Task:
    root = JobFiles(Path(payload["root"]))
    needs = tuple(Path(path) for path in payload["needs"])
    return Task(payload["run_id"], payload["command"], Path(payload["work_dir"]),
                payload["env"], root, needs)  # fmt: skip


def _submit_tasks(
    tasks: Sequence[Task], artifacts: Sequence[Path], config: Mapping[str, Any], max_parallel: int
) -> list[JobRecord]:
    """One job array, task ``i`` running ``tasks[i]``; each run's job record is kept in its
    artifacts at once (also for a member whose supervisor is gone: reconcile then finds it)."""
    root = tasks[0].files.root.parent / f"array-{tasks[0].run_id}"
    root.mkdir(exist_ok=True)
    name = job_name(tasks[0].run_id, "array")
    script = root / "job.sh"
    text = render_array(tasks, name, sbatch_options(config), root, max_parallel)
    tried_before = script.exists()
    _write_script(script, text)
    comment = job_comment(",".join(task.run_id for task in tasks))
    array_id = submit_once(script, name, comment, look_first=tried_before)
    records = []
    for index, (task, folder) in enumerate(zip(tasks, artifacts, strict=True)):
        _write_script(task.files.script, text)  # each run keeps the script that ran it
        requeue = bool(config.get("requeue"))
        container = str(config.get("container", ""))
        record = JobRecord(f"{array_id}_{index}", str(task.files.root), name, requeue, container)
        record.save(folder)
        records.append(record)
    return records


class SlurmBackend(BaseBackend):
    """Runs the entry point as a Slurm batch job; jobs survive their runner process."""

    name = "slurm"
    config_schema: Mapping[str, Any] = CONFIG_SCHEMA
    queues = True  # a job may wait PENDING: the run stays SCHEDULED until it runs
    batches = True  # a sweep's children are one job array

    def __init__(self) -> None:
        # entry points log through the journal on the shared path, or over HTTP when the
        # tracking store is a server (the nodes may not share a path with it then)
        uri = os.environ.get("RUNNER_TRACKING_URI", "")
        self.tracking: Transport = "http" if uri.startswith(("http://", "https://")) else "journal"

    def preflight(self, spec: ProjectSpec, config: Mapping[str, Any]) -> None:
        """Refuse before a run exists: extra_args off the allowlist, or no controller."""
        check_config(config)
        client.slurm(["scontrol", "ping"], timeout=30)
        if "container" in config:
            check_container_runtime()

    def prepare(self, request: LaunchRequest) -> Prepared:
        """A run of a batch joins it here and waits for the other members (an interrupt while
        waiting cancels the run before anything is submitted)."""
        if request.batch is None or JobRecord.load(_artifacts(request)) is not None:
            return Prepared(request)
        check_config(request.config)
        request.batch.join(_payload(request, _task(request)))
        return ArrayMember(request, members=request.batch.gather())

    def inputs_dir(self, config: Mapping[str, Any]) -> Path:
        """Copies of ``runs:/`` inputs go where the nodes see them: the shared path."""
        return (shared_root() or runner_home()) / "inputs"

    def launch(self, prepared: Prepared) -> SlurmRunHandle:
        request = prepared.request
        artifacts = _artifacts(request)
        if isinstance(prepared, ArrayMember) and request.batch is not None:
            batch = request.batch
            submit = functools.partial(self._submit_members, max_parallel=batch.max_parallel)
            batch.submit_once(prepared.members, submit)
        existing = JobRecord.load(artifacts)
        if existing is not None:  # launched before (a retried launch, an array): the same job
            return SlurmRunHandle(existing, artifacts)
        check_config(request.config)
        task = _task(request)
        name = job_name(request.run_id, request.run_name)
        tried_before = task.files.script.exists()  # an earlier launch got as far as sbatch
        _write_script(task.files.script, render_job(task, name, sbatch_options(request.config)))
        comment = job_comment(request.run_id)
        job_id = submit_once(task.files.script, name, comment, look_first=tried_before)
        requeue, container = bool(request.config.get("requeue")), request.config.get("container")
        record = JobRecord(job_id, str(task.files.root), name, requeue, str(container or ""))
        record.save(artifacts)
        return SlurmRunHandle(record, artifacts)

    def submit_array(
        self, requests: Sequence[LaunchRequest], max_parallel: int = 0
    ) -> list[SlurmRunHandle]:
        """One job array for many runs (a sweep's children): task ``i`` runs ``requests[i]``,
        at most ``max_parallel`` at once (0: no limit). The hook for sweeps on ``-b slurm``;
        the options come from the first request's config (a sweep shares one)."""
        if not requests:
            return []
        check_config(requests[0].config)
        tasks = [_task(request) for request in requests]
        artifacts = [_artifacts(request) for request in requests]
        records = _submit_tasks(tasks, artifacts, requests[0].config, max_parallel)
        return [SlurmRunHandle(r, a) for r, a in zip(records, artifacts, strict=True)]

    def _submit_members(self, members: Mapping[int, Payload], max_parallel: int) -> dict[int, str]:
        """The batch's one submission: every member that joined, task ``k`` the ``k``-th."""
        order = sorted(members)
        payloads = [members[index] for index in order]
        tasks = [_member_task(payload) for payload in payloads]
        artifacts = [Path(payload["artifacts"]) for payload in payloads]
        records = _submit_tasks(tasks, artifacts, payloads[0]["config"], max_parallel)
        return {index: record.job_id for index, record in zip(order, records, strict=True)}

    def attach(self, ref: RunRef) -> SlurmRunHandle:
        record = JobRecord.load(ref.artifacts_dir)
        if record is None:
            raise BackendError(f"run {ref.run_id} has no Slurm job recorded")
        return SlurmRunHandle(record, ref.artifacts_dir)

    def reconcile(self, refs: Sequence[RunRef]) -> dict[str, Verdict]:
        """What Slurm says of runs whose runner died: one question for all of them. A job
        still queued or running keeps its run live; Slurm not answering decides nothing."""
        records = {ref.run_id: JobRecord.load(ref.artifacts_dir) for ref in refs}
        records.update(_unrecorded_jobs([ref for ref in refs if records[ref.run_id] is None]))
        files = {r.job_id: JobFiles(Path(r.root)) for r in records.values() if r is not None}
        states = job_states(files)
        verdicts: dict[str, Verdict] = {}
        for run_id, record in records.items():
            state = states.get(record.job_id) if record is not None else None
            if state is None:
                verdicts[run_id] = LOST
            elif state.ended:
                verdicts[run_id] = exit_info(state)
            else:
                verdicts[run_id] = ExitInfo(state.status)  # SCHEDULED while still queued
        return verdicts
