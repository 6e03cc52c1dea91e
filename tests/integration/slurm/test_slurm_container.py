"""The Slurm backend's ``container`` key on a cluster with a real OCI runtime (runc): the entry
point runs inside the bundle's rootfs, and its output and exit code reach the run.

The bundle is made the way Slurm's containers guide makes one: a locally built Docker image
exported into ``rootfs/`` and a ``config.json`` from ``runc spec``, with bind mounts for the
paths the job needs (the project and RUNNER_HOME, where the job's files live).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.docker_images import ImageUnavailable, ensure_busybox_image
from tests.helpers import run_cli, write_project
from tests.slurm_cluster import ClusterUnavailable, SlurmCluster, slurm_cluster

pytestmark = pytest.mark.docker

# Slurm's suggested runc setup (the run operation, no state polling); runc runs as the job's
# user, root here, so no --rootless; its state lives in the cluster's directory
RUNC = "runc --root={base}/runc"
CONTAINER = "%n.%u.%j.%s.%t"
# The query of a container already gone answers "stopped", in JSON (the quotes as octal
# escapes, the backslashes doubled for oci.conf's parser): runc's own error text would reach
# the job's stderr as slurmstepd's "JSON parsing error"
STOPPED = r"printf '{\\042status\\042:\\042stopped\\042}'"
OCI_CONF = f"""\
RunTimeQuery="{RUNC} state {CONTAINER} 2>/dev/null || {STOPPED}"
RunTimeKill="{RUNC} kill -a {CONTAINER}"
RunTimeDelete="{RUNC} delete --force {CONTAINER}"
RunTimeRun="{RUNC} run {CONTAINER} -b %b"
"""


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):  # CI installs runc, Docker and Slurm: a missing piece is a failure
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster() -> Iterator[SlurmCluster]:
    """Overrides the conftest's clusters: one with oci.conf, which ``slurm`` then points at."""
    if shutil.which("runc", path=f"{os.environ.get('PATH', '')}:/usr/sbin") is None:
        _skip_or_fail("runc is not installed")
    try:
        with slurm_cluster(oci_conf=OCI_CONF) as running:
            yield running
    except ClusterUnavailable as exc:
        _skip_or_fail(f"no Slurm cluster here: {exc}")


@pytest.fixture(scope="module")
def busybox_image() -> str:
    from backends.docker.client import connect
    from runner.errors import BackendError

    try:
        return ensure_busybox_image(connect())
    except (BackendError, ImageUnavailable) as exc:
        _skip_or_fail(f"no busybox image to make the bundle's rootfs from: {exc}")
        raise AssertionError("unreachable") from exc


def _export_rootfs(image: str, rootfs: Path) -> None:
    """``docker create`` + ``docker export`` into ``rootfs``: the image's filesystem as a tree."""
    from backends.docker.client import connect

    client = connect()
    container = client.containers.create(image)
    try:
        archive = rootfs.parent / "rootfs.tar"
        with archive.open("wb") as out:
            for chunk in container.export():
                out.write(chunk)
        with tarfile.open(archive) as tar:
            tar.extractall(rootfs, filter="tar")
        archive.unlink()
    finally:
        container.remove(force=True)


def _bind(path: Path) -> dict[str, Any]:
    return {"destination": str(path), "type": "none", "source": str(path),
            "options": ["rbind", "rw"]}  # fmt: skip


def _write_config(bundle: Path, binds: list[Path]) -> None:
    """``runc spec``'s config, adjusted: the host's network (Slurm supports no other) and the
    job's paths bound at the same place, so the batch script's paths hold inside."""
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True, timeout=30)
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["terminal"] = False
    namespaces = config["linux"]["namespaces"]
    config["linux"]["namespaces"] = [ns for ns in namespaces if ns["type"] != "network"]
    config["mounts"] += [_bind(path) for path in binds]
    config_path.write_text(json.dumps(config, indent=2))


@pytest.fixture
def bundle(busybox_image: str, tmp_path: Path, runner_home: Path) -> tuple[Path, str]:
    """An OCI bundle whose rootfs holds an ``/etc/os-release`` of its own; and that text."""
    bundle = tmp_path / "bundle"
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    _export_rootfs(busybox_image, rootfs)
    marker = f'PRETTY_NAME="runner test bundle {uuid.uuid4().hex}"\n'
    (rootfs / "etc" / "os-release").write_text(marker)
    _write_config(bundle, [tmp_path / "project", runner_home])
    return bundle, marker


def _project(root: Path, command: str) -> Path:
    mlproject = f"entry_points:\n  main:\n    command: {json.dumps(command)}\n"
    return write_project(root, {"MLproject": mlproject})


def _run_in(bundle: Path, project: Path) -> tuple[int, str, str]:
    config = json.dumps({"container": str(bundle)})
    args = ("run", str(project), "-b", "slurm", "--env-manager", "local", "-c", config)
    result = run_cli(*args, timeout=180)
    return result.returncode, result.stdout, result.stderr


def _latest_run() -> dict[str, Any]:
    result = run_cli("runs", "list", "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout)[0])


# what only the host has: the Slurm daemons and bash are not in the busybox image
_INSIDE = "cat /etc/os-release; [ -e /usr/sbin/slurmd ] || echo no slurmd here; "


def test_the_entry_point_runs_inside_the_container(
    slurm: SlurmCluster, bundle: tuple[Path, str], tmp_path: Path, runner_home: Path
) -> None:
    path, marker = bundle
    command = _INSIDE + "command -v bash || echo no bash either; echo to stderr >&2"
    code, out, err = _run_in(path, _project(tmp_path / "project", command))
    assert code == 0, err
    assert marker in out  # the bundle's own file: the host has no such os-release
    assert marker not in Path("/etc/os-release").read_text()
    assert "no slurmd here\nno bash either\n" in out
    assert "slurmstepd" not in err  # Slurm itself had nothing to complain about
    run = _latest_run()
    assert (run["status"], run["exit_code"]) == ("FINISHED", 0)
    run_id = str(run["run_id"])
    log = (runner_home / "artifacts" / run_id / "output.log").read_text()
    assert marker in log and "to stderr" in log
    job = json.loads((runner_home / "artifacts" / run_id / "slurm-job.json").read_text())
    assert slurm.job_field(job["job_id"], "Container") == str(path)


def test_a_failing_command_in_the_container_fails_with_its_code(
    slurm: SlurmCluster, bundle: tuple[Path, str], tmp_path: Path
) -> None:
    path, marker = bundle
    code, out, _ = _run_in(path, _project(tmp_path / "project", _INSIDE + "exit 7"))
    assert code != 0
    assert marker in out and "no slurmd here" in out
    run = _latest_run()
    assert (run["status"], run["exit_code"]) == ("FAILED", 7)
    assert "FAILED: entry point exited with code 7" in str(run["failure_reason"]), run


def test_a_bundle_slurm_cannot_set_up_is_explained(slurm: SlurmCluster, tmp_path: Path) -> None:
    empty = tmp_path / "no-bundle"
    empty.mkdir()  # no config.json: Slurm cancels the job before its script starts
    code, _, err = _run_in(empty, _project(tmp_path / "project", "echo never"))
    assert code != 0
    run = _latest_run()
    assert run["status"] == "KILLED"  # Slurm's word: CANCELLED
    reason = str(run["failure_reason"])
    assert reason.startswith("Slurm job ") and "CANCELLED before its batch script started" in reason
    assert f"({empty} missing on the node, or no config.json there)" in reason
    assert "before its batch script started" in err
