"""The frozen records of an MLproject: entry points, parameters, environment, the project."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

EnvKind = Literal["system", "python_env", "conda_env", "docker_env"]


@dataclass(frozen=True, slots=True)
class Parameter:
    name: str
    type: str  # string, float, int, bool, path, uri (unknown MLflow types behave as string)
    default: str | None  # canonical string form of the YAML default; None = required
    secret: bool = False  # passed to the entry point, never recorded or shown


@dataclass(frozen=True, slots=True)
class EntryPoint:
    name: str
    command: str  # the template, with {name} placeholders and {{ }} for literal braces
    parameters: tuple[Parameter, ...] = ()


@dataclass(frozen=True, slots=True)
class DockerBuild:
    context: str = "."
    dockerfile: str = "Dockerfile"
    args: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class DockerEnv:
    image: str
    volumes: tuple[str, ...] = ()
    # (NAME, None) copies a host variable; (NAME, VALUE) sets one.
    environment: tuple[tuple[str, str | None], ...] = ()
    build: DockerBuild | None = None


@dataclass(frozen=True, slots=True)
class EnvSpec:
    kind: EnvKind
    file: Path | None = None  # absolute path of python_env.yaml / conda.yaml, if any
    docker: DockerEnv | None = None


@dataclass(frozen=True, slots=True)
class ProjectSpec:
    root: Path
    name: str | None
    env: EnvSpec
    entry_points: tuple[EntryPoint, ...] = ()
    spec_file: Path | None = None  # None when the project has no MLproject
    # what MLflow accepts and runner only warns about (unknown keys), one line each
    warnings: tuple[str, ...] = ()
