"""The pod image: the Docker backend's run image, plus runner's pod files, pushed once by digest."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from backends.docker.layers import layer_labels, short, slug
from runner.backend import LaunchRequest
from runner.errors import BackendError

LIB_DIR = "/runner/lib"  # runner_tracking.py lives here in every pod image
SCHEDULE_ENTRY = f"{LIB_DIR}/runner_schedule.py"  # what a CronJob's pods run
INPUTS_ENTRY = f"{LIB_DIR}/runner_inputs.py"  # fetches runs:/ inputs before the command runs
_TRACKING = Path(__file__).parents[2] / "runner" / "tracking.py"
_POD_ENTRY = Path(__file__).with_name("pod_entry.py")
_POD_INPUTS = Path(__file__).with_name("pod_inputs.py")


def _lib_files() -> dict[str, bytes]:
    return {
        "runner_tracking.py": _TRACKING.read_bytes(),
        "runner_schedule.py": _POD_ENTRY.read_bytes(),
        "runner_inputs.py": _POD_INPUTS.read_bytes(),
    }


def _lib_tag(project: str | None, parent_id: str, files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256(parent_id.encode())
    for name, data in sorted(files.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return f"runner-pod/{slug(project)}:{short(digest.hexdigest())}"


def _lib_context(parent: str, files: Mapping[str, bytes]) -> io.BytesIO:
    labels = " ".join(f'"{k}"="{v}"' for k, v in layer_labels("pod").items())
    dockerfile = f"FROM {parent}\nCOPY lib/ {LIB_DIR}/\nLABEL {labels}\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in {
            "Dockerfile": dockerfile.encode(),
            **{f"lib/{k}": v for k, v in files.items()},
        }.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def pod_image(client: Any, request: LaunchRequest) -> tuple[Any, dict[str, str]]:
    """The run image of the Docker backend with ``runner_tracking`` added (one cached layer)."""
    import docker.errors

    from backends.docker.image import ImageBuilder

    builder = ImageBuilder(client, request.config.get("build_timeout", 3600))
    facts = builder.run_image(request)
    files = _lib_files()
    tag = _lib_tag(request.spec.name, facts["image_id"], files)
    try:
        image = client.images.get(tag)
    except docker.errors.ImageNotFound:
        context = _lib_context(facts["image"], files)
        image, _ = client.images.build(
            fileobj=context,
            custom_context=True,
            tag=tag,
            rm=True,
            forcerm=True,
            network_mode="none",
        )
        built = [p for p in facts["image_built"].split(",") if p != "none"]
        facts["image_built"] = ",".join([*built, "pod"])
    return image, {**facts, "image": tag, "image_id": image.id}


def _registry_digest(image: Any, repository: str) -> str | None:
    for ref in image.attrs.get("RepoDigests") or []:
        name, _, digest = ref.partition("@")
        if name == repository:
            return str(digest)
    return None


def _registry_has(client: Any, reference: str) -> bool:
    import docker.errors

    try:
        client.images.get_registry_data(reference)
    except docker.errors.APIError:
        return False
    return True


def push(client: Any, image: Any, repository: str) -> dict[str, str]:
    """Tag into ``repository``, push unless the registry already has this image, and return
    the facts naming it by digest. Credentials come from the Docker config; none is recorded."""
    tag = image.id.removeprefix("sha256:")[:16]
    known = _registry_digest(image, repository)
    if known and _registry_has(client, f"{repository}@{known}"):
        return _pushed_facts(repository, known, pushed=False)
    image.tag(repository, tag)
    for line in client.api.push(repository, tag, stream=True, decode=True):
        if "error" in line:
            raise BackendError(
                f"pushing {repository}:{tag} failed: {line['error']}",
                hint="check repository-uri and that `docker login` has credentials for it",
            )
    image.reload()
    digest = _registry_digest(image, repository)
    if digest is None:
        raise BackendError(f"the registry gave no digest for {repository}:{tag}")
    return _pushed_facts(repository, digest, pushed=True)


def _pushed_facts(repository: str, digest: str, pushed: bool) -> dict[str, str]:
    return {
        "image_repository": repository,
        "image_digest": digest,
        "image_digest_source": "registry manifest digest",
        "image_ref": f"{repository}@{digest}",
        "image_pushed": "yes" if pushed else "no (the registry already had it)",
    }
