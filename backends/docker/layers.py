"""Pure builders for the run image's layers: base, dependencies (by env key), code (by hash)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from backends.docker.build import LABEL_MANAGED, PROJECT_DIR
from runner.errors import BackendError
from runner.project.files import read_project_file

LABEL_LAYER = "runner.layer"
ENV_DIR = "/opt/runner-env"
WHEELS_DIR = "/tmp/runner-wheels"
LOCK_NAME = "requirements.lock"
# never copied into an image, whatever .dockerignore says: history and credentials live there
ALWAYS_EXCLUDED = (".git", "**/.git")
# the venv sees the base's site-packages only to borrow its pip (a --python install from
# outside is ~6x slower); a base without pip bootstraps one from ensurepip. --no-index: the
# build is offline, wheels come from the host
_INSTALL = f"""\
RUN python3 -m venv --system-site-packages --without-pip {ENV_DIR} \\
 && {{ {ENV_DIR}/bin/python -c "import pip" 2>/dev/null \\
      || {ENV_DIR}/bin/python -m ensurepip --default-pip >/dev/null; }} \\
 && {ENV_DIR}/bin/python -m pip install --no-index --no-deps --no-cache-dir \\
      --disable-pip-version-check --find-links {WHEELS_DIR} -r {WHEELS_DIR}/{LOCK_NAME} \\
 && rm -rf {WHEELS_DIR}
"""


def read_dockerignore(root: Path) -> list[str]:
    """The patterns of ``root/.dockerignore`` (blank lines and ``#`` comments dropped)."""
    if not os.path.lexists(root / ".dockerignore"):
        return []
    text = read_project_file(root, ".dockerignore").decode("utf-8", errors="replace")
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def project_files(root: Path) -> list[str]:
    """Relative paths (files, links, dirs) that go into the code layer, sorted."""
    from docker.utils.build import PatternMatcher

    patterns = [*read_dockerignore(root), *ALWAYS_EXCLUDED]  # last match wins: ours
    return sorted(PatternMatcher(patterns).walk(str(root)))


def tree_digest(root: Path, files: Iterable[str]) -> str:
    """sha256 over names, types, exec bits, contents and link targets: what COPY would copy."""
    digest = hashlib.sha256()
    for rel in files:
        path = root / rel
        info = path.lstat()
        digest.update(f"{rel}\0{_kind(info.st_mode)}\0{info.st_mode & 0o111:o}\0".encode())
        if stat.S_ISLNK(info.st_mode):
            digest.update(os.readlink(path).encode())
        elif stat.S_ISREG(info.st_mode):
            digest.update(_file_digest(path))
    return digest.hexdigest()


def _kind(mode: int) -> str:
    return "l" if stat.S_ISLNK(mode) else "d" if stat.S_ISDIR(mode) else "f"


def _file_digest(path: Path) -> bytes:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").digest()


def slug(name: str | None) -> str:
    """A project name as a Docker repository component: lowercase ``[a-z0-9-]``."""
    return re.sub(r"[^a-z0-9]+", "-", (name or "").lower()).strip("-")[:64] or "project"


def short(digest: str, length: int = 16) -> str:
    return digest.removeprefix("sha256:")[:length]


def _combined(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def base_tag(project: str | None, context_digest: str) -> str:
    return f"runner/{slug(project)}-base:{short(context_digest)}"


def env_tag(env_key: str, parent_id: str) -> str:
    """The dependencies layer: the environment key names it, on top of one base image."""
    return f"runner-env:{short(env_key)}-{short(parent_id, 12)}"


def code_tag(project: str | None, parent_id: str, tree: str) -> str:
    return f"runner/{slug(project)}:{short(_combined(parent_id, tree))}"


def build_digest(tree: str, dockerfile: str, args: Iterable[tuple[str, str]]) -> str:
    """Identity of a docker_env.build base image: its context, Dockerfile path and args."""
    return _combined(tree, dockerfile, *(f"{k}={v}" for k, v in sorted(args)))


# Labels go in one LABEL line: the SDK's ``labels=`` adds a build step (a commit) per label.
def env_dockerfile(parent: str, labels: Mapping[str, str]) -> str:
    copy = f"FROM {parent}\nCOPY wheels/ {WHEELS_DIR}/\n"
    env = f"ENV VIRTUAL_ENV={ENV_DIR} PATH={ENV_DIR}/bin:$PATH\n"
    return copy + _INSTALL + env + _label_line(labels)


def code_dockerfile(parent: str, labels: Mapping[str, str]) -> str:
    # no WORKDIR step: each step costs a commit, and runs set working_dir when created
    return f"FROM {parent}\nCOPY project/ {PROJECT_DIR}/\n" + _label_line(labels)


def _label_line(labels: Mapping[str, str]) -> str:
    return "LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items())) + "\n"


def layer_labels(layer: str, **extra: str) -> dict[str, str]:
    return {
        LABEL_MANAGED: "true",
        LABEL_LAYER: layer,
        **{f"runner.{k}": v for k, v in extra.items()},
    }


def default_base_image(python_version: str | None) -> str:
    """``python:X.Y-slim`` for the environment's interpreter (the host's when unknown)."""
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    major_minor = ".".join((python_version or "").split(".")[:2])
    return f"python:{major_minor or host}-slim"


def pip_download_argv(lock: Path, dest: Path, python_version: str | None) -> list[str]:
    """The host downloads exactly the wheels the lock names; the image build stays offline."""
    argv = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps"]
    argv += ["--disable-pip-version-check", "--quiet", "--dest", str(dest), "-r", str(lock)]
    if python_version:
        argv += ["--python-version", ".".join(python_version.split(".")[:2])]
    return argv


def wants_env_layer(manager: str, key: str | None, lock: str | None) -> bool:
    """A dependencies layer for a locked python env; a conda env cannot go into an image yet."""
    if manager == "conda":
        raise BackendError(
            "the docker backend cannot install a conda environment into an image yet",
            hint="use a docker_env image that has the packages, or a python_env project",
        )
    return bool(key and lock and lock.strip()) and manager not in ("local", "docker")


def image_facts(
    image: Mapping[str, Any],
    base: Mapping[str, Any],
    env: Mapping[str, Any] | None,
    built: list[str],
) -> dict[str, str]:
    """What the run records about its image; a local build has no registry digest (say so)."""
    facts = {
        "image": image["tag"],
        "image_id": image["id"],
        "image_digest": image["id"],
        "image_digest_source": "image id (built locally, never pushed: no registry digest)",
        "base_image": base["tag"],
        "base_image_id": base["id"],
        "image_built": ",".join(built) or "none",
    }
    if base.get("repo_digests"):
        facts["base_image_digest"] = base["repo_digests"][0]
    if env is not None:
        facts["env_image"], facts["env_image_id"] = env["tag"], env["id"]
    return facts
