"""conda.yaml read for the conda manager: channels, match specs, a ``pip:`` section, variables."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.envs.digest import canonical_digest
from runner.errors import SpecError
from runner.project.records import ProjectSpec

LOCK_NAME = "conda-lock.yml"  # the committed lock next to MLproject (`runner lock` writes it)
DEFAULT_CHANNELS = ("conda-forge",)  # what MLflow uses for a project without an env file
# conda's "defaults" is a set of channels its own configuration names, not a channel
DEFAULTS_VAR = "RUNNER_CONDA_DEFAULT_CHANNELS"
# A match spec reaches the solver only: refuse what no conda spec looks like (control
# characters, a leading dash) so an error names the line instead of a solver crash.
_MATCH_SPEC = re.compile(r"^[A-Za-z0-9_.:/\[][^\x00-\x1f]*$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class CondaSpec:
    """What a conda env must contain (the ``pip:`` section's ``-r`` files already read in)."""

    channels: tuple[str, ...]
    specs: tuple[str, ...]
    pip: tuple[str, ...] = ()
    pip_constraints: tuple[str, ...] = ()
    pip_options: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()  # conda's `variables:` section
    origin: str = "conda.yaml"
    root: Path = field(default=Path("."), compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def digest(self) -> str:
        """sha256 of what decides the solve (channels as written, specs, the pip section)."""
        names = ("channels", "specs", "pip", "pip_constraints", "pip_options", "variables")
        return canonical_digest({name: getattr(self, name) for name in names})


def read_conda_spec(spec: ProjectSpec) -> CondaSpec:
    """The project's conda env file; a project without one gets MLflow's ``python`` env."""
    if spec.env.kind != "conda_env" or spec.env.file is None:
        return CondaSpec(DEFAULT_CHANNELS, ("python",), origin="the default conda env")
    return read_conda_file(spec.env.file, spec.root)


def read_conda_file(path: Path, root: Path) -> CondaSpec:
    from runner.envs.python.pyspec import expand_requirements, load_env_file

    data = load_env_file(path, root).data
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise SpecError(f"{path.name}: must be a mapping with channels and dependencies")
    channels, warnings = _defaults(_channels(data.get("channels"), path.name), path.name)
    specs, pip_lines = _dependencies(data.get("dependencies"), path.name)
    pip, constraints, options = expand_requirements(root, path.name, pip_lines)
    return CondaSpec(
        channels=channels,
        specs=specs,
        pip=pip,
        pip_constraints=constraints,
        pip_options=options,
        variables=_variables(data.get("variables"), path.name),
        origin=path.name,
        root=root.resolve(),
        warnings=warnings,
    )


def _channels(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_CHANNELS
    if not isinstance(value, list) or not all(isinstance(c, str) and c.strip() for c in value):
        raise SpecError(f"{name}: channels must be a list of channel names or URLs")
    return tuple(channel.strip() for channel in value)


def _defaults(channels: tuple[str, ...], name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``defaults`` replaced by ``RUNNER_CONDA_DEFAULT_CHANNELS``, else by conda-forge (said)."""
    if "defaults" not in channels:
        return channels, ()
    configured = tuple(os.environ.get(DEFAULTS_VAR, "").replace(",", " ").split())
    warnings: tuple[str, ...] = ()
    if not configured:
        configured = DEFAULT_CHANNELS
        warnings = (
            f"{name}: the 'defaults' channel is read as conda-forge "
            f"(set {DEFAULTS_VAR} to the channels your conda's defaults name)",
        )
    expanded: list[str] = []
    for channel in channels:
        for item in configured if channel == "defaults" else (channel,):
            if item not in expanded:
                expanded.append(item)
    return tuple(expanded), warnings


def _dependencies(value: Any, name: str) -> tuple[tuple[str, ...], list[str]]:
    if value is None:
        value = []
    if not isinstance(value, list):
        raise SpecError(f"{name}: dependencies must be a list")
    specs: list[str] = []
    pip: list[str] = []
    for dep in value:
        if isinstance(dep, dict) and set(dep) == {"pip"}:
            pip.extend(_pip_section(dep["pip"], name))
        elif isinstance(dep, str | int | float) and not isinstance(dep, bool):
            specs.append(_match_spec(str(dep).strip(), name))
        else:
            raise SpecError(
                f"{name}: invalid conda dependency: {dep!r}. Must be a string or "
                "a mapping of the form {pip: [...]}"
            )
    if pip and not any(_package_name(spec) == "pip" for spec in specs):
        specs.append("pip")  # as conda does: a pip section needs pip (and its python)
    return tuple(specs), pip


def _match_spec(dep: str, name: str) -> str:
    if not _MATCH_SPEC.match(dep):
        raise SpecError(f"{name}: invalid conda match spec {dep!r}")
    return dep


def _package_name(spec: str) -> str:
    """The package a match spec names: ``conda-forge::numpy>=1.2`` -> ``numpy``."""
    bare = spec.split("::")[-1]
    return re.split(r"[\s=<>!~\[]", bare, maxsplit=1)[0].lower()


def _pip_section(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SpecError(f"{name}: the pip section must be a list of requirement strings")
    return value


def _variables(value: Any, name: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(_VARIABLE.match(str(k)) for k in value):
        raise SpecError(f"{name}: variables must map variable names to values")
    return tuple(sorted((str(k), str(v)) for k, v in value.items()))
