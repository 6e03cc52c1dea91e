"""The frozen records of an MLproject: entry points, parameters, environment, the project."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple

# NamedTuples, not dataclasses: every run imports these, and a dataclass costs ~0.3 ms to create.
EnvKind = Literal["system", "python_env", "conda_env", "docker_env"]


class Parameter(NamedTuple):
    name: str
    type: str  # string, float, int, bool, path, uri (unknown MLflow types behave as string)
    default: str | None  # canonical string form of the YAML default; None = required
    secret: bool = False  # passed to the entry point, never recorded or shown


class EntryPoint(NamedTuple):
    name: str
    command: str  # the template, with {name} placeholders and {{ }} for literal braces
    parameters: tuple[Parameter, ...] = ()


class DockerBuild(NamedTuple):
    context: str = "."
    dockerfile: str = "Dockerfile"
    args: tuple[tuple[str, str], ...] = ()


class DockerEnv(NamedTuple):
    image: str
    volumes: tuple[str, ...] = ()
    # (NAME, None) copies a host variable; (NAME, VALUE) sets one.
    environment: tuple[tuple[str, str | None], ...] = ()
    build: DockerBuild | None = None


class EnvSpec(NamedTuple):
    kind: EnvKind
    file: Path | None = None  # absolute path of python_env.yaml / conda.yaml, if any
    docker: DockerEnv | None = None


class ProjectSpec(NamedTuple):
    root: Path
    name: str | None
    env: EnvSpec
    entry_points: tuple[EntryPoint, ...] = ()
    spec_file: Path | None = None  # None when the project has no MLproject
    # what MLflow accepts and runner only warns about (unknown keys), one line each
    warnings: tuple[str, ...] = ()
