"""Image I/O for the Docker backend: reuse each layer by its content tag, else build it offline."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from backends.docker import layers
from backends.docker.policy import contained
from runner.backend import LaunchRequest
from runner.errors import BackendError

if TYPE_CHECKING:
    from runner.project.records import DockerBuild, ProjectSpec

_SPOOL = 32 * 1024 * 1024  # build contexts above this spill from memory to a temp file
Ref = dict[str, Any]  # {"tag", "id", "repo_digests"}


class ImageBuilder:
    """The run image of a request: base → dependencies → code, building only what is missing.

    ``built`` lists the layers this instance built ("base", "env", "code"), so a second run
    with the same code and environment can show it built nothing.
    """

    def __init__(self, client: Any, build_timeout: float = 3600) -> None:
        self._client = client
        self._build_timeout = build_timeout  # a silent RUN step may take long: not the API's 60 s
        self.built: list[str] = []

    def run_image(self, request: LaunchRequest) -> dict[str, str]:
        base, env, layer = self._base(request), request.environment, None
        if env is not None and layers.wants_env_layer(env.manager, env.key, env.lock):
            layer = self._env_layer(base, env.key or "", env.lock or "", env.python)
        image = self._code_layer(layer or base, request.spec)
        return layers.image_facts(image, base, layer, self.built)

    def _base(self, request: LaunchRequest) -> Ref:
        docker_env, config = request.spec.env.docker, request.config
        if docker_env and docker_env.build and "image_override" not in config:
            return self._built_base(request.spec, docker_env.build)
        python = request.environment.python if request.environment else None
        name = config.get("image_override") or (
            docker_env.image if docker_env else config.get("base_image")
        )
        return self._local_or_pull(name or layers.default_base_image(python))

    def _local_or_pull(self, name: str) -> Ref:
        import docker.errors

        found = self._lookup(name)
        if found:
            return found
        try:
            self._client.images.pull(name)
        except docker.errors.APIError as exc:
            raise BackendError(
                f"cannot pull the base image {name!r}: {exc.explanation or exc}",
                hint="with no registry reachable, build or load the image locally "
                "(docker build / docker load / docker import) and name it with "
                """-c '{"image_override": "<tag>"}'""",
            ) from exc
        return _ref(self._client.images.get(name), name)

    def _built_base(self, spec: ProjectSpec, build: DockerBuild) -> Ref:
        context = contained(spec.root, build.context, "docker_env.build.context")
        dockerfile = contained(context, build.dockerfile, "docker_env.build.dockerfile")
        tree = layers.tree_digest(context, layers.project_files(context))
        tree = layers.tree_digest(dockerfile.parent, [dockerfile.name]) + tree
        tag = layers.base_tag(spec.name, layers.build_digest(tree, build.dockerfile, build.args))
        # the project's own Dockerfile may need the network (apt-get...): default network here
        ref = self._lookup(tag) or self._build(
            "base",
            tag,
            path=str(context),
            dockerfile=build.dockerfile,
            buildargs=dict(build.args),
            labels=layers.layer_labels("base"),
        )
        if spec.env.docker and spec.env.docker.image:  # the name the MLproject gives it, too
            self._alias(ref["id"], spec.env.docker.image)
        return ref

    def _alias(self, image_id: str, name: str) -> None:
        from docker.utils import parse_repository_tag

        repository, tag = parse_repository_tag(name)
        self._client.images.get(image_id).tag(repository, tag or "latest")

    def _env_layer(self, base: Ref, key: str, lock: str, python: str | None) -> Ref:
        tag = layers.env_tag(key, base["id"])
        found = self._lookup(tag)
        if found:
            return found
        with tempfile.TemporaryDirectory(prefix="runner-wheels-") as tmp:
            wheels = Path(tmp) / "wheels"
            wheels.mkdir()
            (wheels / layers.LOCK_NAME).write_text(lock, encoding="utf-8")
            _download_wheels(wheels / layers.LOCK_NAME, wheels, python)
            files = ["wheels", *(f"wheels/{p.name}" for p in sorted(wheels.iterdir()))]
            labels = layers.layer_labels("env", env_key=key)
            dockerfile = layers.env_dockerfile(base["tag"], labels)
            with _context(dockerfile, Path(tmp), files) as ctx:
                return self._build("env", tag, fileobj=ctx, network_mode="none")

    def _code_layer(self, parent: Ref, spec: ProjectSpec) -> Ref:
        files = layers.project_files(spec.root)
        tree = layers.tree_digest(spec.root, files)
        tag = layers.code_tag(spec.name, parent["id"], tree)
        found = self._lookup(tag)
        if found:
            return found
        labels = layers.layer_labels("code", code_hash=tree)
        dockerfile = layers.code_dockerfile(parent["tag"], labels)
        with _context(dockerfile, spec.root, files, prefix="project") as ctx:
            return self._build("code", tag, fileobj=ctx, network_mode="none")

    def _lookup(self, tag: str) -> Ref | None:
        import docker.errors

        try:
            return _ref(self._client.images.get(tag), tag)
        except docker.errors.ImageNotFound:
            return None

    def _build(self, layer: str, tag: str, **options: Any) -> Ref:
        import docker.errors

        if "fileobj" in options:
            options["custom_context"] = True
        try:
            image, _ = self._client.images.build(
                tag=tag, rm=True, forcerm=True, timeout=self._build_timeout, **options
            )
        except docker.errors.BuildError as exc:
            log = _log_text(exc.build_log)  # an iterator: read it once
            self._drop_partial(log)
            raise BackendError(
                f"building the {layer} image {tag} failed: {exc.msg}",
                hint="build log tail:\n" + "\n".join(log.rstrip().splitlines()[-15:]),
            ) from exc
        self.built.append(layer)
        return _ref(image, tag)

    def _drop_partial(self, log: str) -> None:
        """The steps a failed build committed stay as dangling images: remove them."""
        import docker.errors

        committed = re.findall(r"---> ([0-9a-f]{12})\b", log)
        if len(committed) > 1:  # the first is the FROM image, which is not ours to remove
            with contextlib.suppress(docker.errors.APIError):  # shared with a tagged image
                self._client.images.remove(committed[-1])


def _ref(image: Any, tag: str) -> Ref:
    return {"tag": tag, "id": image.id, "repo_digests": image.attrs.get("RepoDigests") or []}


def _log_text(build_log: Any) -> str:
    return "".join(str(entry.get("stream", "")) for entry in build_log if isinstance(entry, dict))


def _download_wheels(lock: Path, dest: Path, python: str | None) -> None:
    argv = layers.pip_download_argv(lock, dest, python)
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise BackendError(
            "could not download the wheels of the locked requirements:\n" + "\n".join(tail),
            hint="images install offline from wheels the host downloads; a package without a "
            "wheel needs one in your index or in a --find-links directory (PIP_FIND_LINKS)",
        )


def _context(dockerfile: str, root: Path, files: list[str], prefix: str = "") -> IO[bytes]:
    """A build context: the Dockerfile, then ``files`` of ``root`` under ``prefix``."""
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115 (returned)
    with tarfile.open(fileobj=spool, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile.encode())
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
        if prefix:  # the directory itself, so an empty project still has something to COPY
            _add(tar, root, prefix)
        for rel in files:
            _add(tar, root / rel, f"{prefix}/{rel}" if prefix else rel)
    spool.seek(0)
    return spool


def _add(tar: tarfile.TarFile, path: Path, name: str) -> None:
    info = tar.gettarinfo(str(path), arcname=name)
    if info is None:  # sockets and devices have no place in an image
        return
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if info.isfile():
        with path.open("rb") as fh:
            tar.addfile(info, fh)
    else:
        tar.addfile(info)
