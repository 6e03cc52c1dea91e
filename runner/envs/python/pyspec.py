"""Python environment specs: python_env.yaml, a conda YAML read for uv, or the no-file default."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.envs.digest import canonical_digest
from runner.envs.system import current_python
from runner.errors import SpecError
from runner.project import speccache
from runner.project.files import contained, file_kind, read_capped, read_project_file
from runner.project.records import ProjectSpec
from runner.project.yamldoc import YamlDoc

PYTHON_ENV_KEYS = ("python", "build_dependencies", "dependencies")
MAX_INCLUDE_DEPTH = 20
# Options that make sense in a lock and are passed on to both the resolver and the installer.
_GLOBAL_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index")
_INCLUDE = re.compile(
    r"^(?P<flag>-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+|(?=[^-\s]))"
    r"(?P<path>\S.*)$"
)
# A conda match spec for python: optional channel, "python", optional operator and version,
# optional build string ("python=3.8.13=h1234_0").
_CONDA_PYTHON = re.compile(
    r"^(?:[\w.-]+::)?python(?:\s*(?P<op>[<>!=~]=?|==))?\s*"
    r"(?P<version>\d[\w.*]*)?(?:=\S+)?$"
)
# Interpreter requests reach uv's command line: no leading "-", no shell or path characters.
_PYTHON_REQUEST = re.compile(r"^[\w<>=!~][\w.<>=!~*, +]*$")
_CONDA_BUILD_PACKAGE = re.compile(
    r"^(?:[\w.-]+::)?(?P<name>pip|setuptools|wheel)"
    r"(?:\s*(?P<op>[<>!=~]=?|==)\s*(?P<version>[\w.*]+))?$"
)


@dataclass(frozen=True)
class PythonSpec:
    """What a Python env must contain, with every ``-r``/``-c`` file already read in."""

    python: str  # an interpreter request: "3.11", "3.11.7"
    build_dependencies: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # index options found in requirement files
    source: str = "default"  # "python_env", "conda", "default"
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def requirements(self) -> tuple[str, ...]:
        return self.build_dependencies + self.dependencies

    def digest(self) -> str:
        """sha256 of the inputs that decide the lock (not where they came from)."""
        inputs = {
            name: getattr(self, name)
            for name in ("python", "build_dependencies", "dependencies", "constraints", "options")
        }
        return canonical_digest(inputs)


def read_python_spec(spec: ProjectSpec) -> PythonSpec:
    """The Python env a project asks for, whatever kind of env file it has."""
    env_file = spec.env.file
    if spec.env.kind == "python_env" and env_file is not None:
        return read_python_env(env_file, spec.root)
    if spec.env.kind == "conda_env" and env_file is not None:
        return read_conda_env(env_file, spec.root)
    if spec.env.kind == "docker_env":
        raise SpecError(
            "a docker_env project has no Python environment to build",
            hint="it runs in its image; drop --env-manager or use docker",
        )
    return default_spec()


def default_spec() -> PythonSpec:
    """No env file: the current interpreter's version and nothing else."""
    return PythonSpec(python=current_python())


def read_python_env(path: Path, root: Path) -> PythonSpec:
    """MLflow's python_env.yaml; ``-r``/``-c`` entries are read relative to the project."""
    root = root.resolve()
    doc = _load_yaml(path, root)
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise SpecError(f"{path.name}: must be a mapping with keys {list(PYTHON_ENV_KEYS)}")
    unknown = sorted(set(data) - set(PYTHON_ENV_KEYS))
    if unknown:
        raise SpecError(f"{path.name}: unknown keys {unknown}; allowed: {list(PYTHON_ENV_KEYS)}")
    build = _str_list(data, "build_dependencies", path.name)
    deps = _str_list(data, "dependencies", path.name)
    python = _python_version(doc, path.name)
    return _make_spec(root, path.name, python, build, deps, source="python_env")


def _make_spec(
    root: Path, name: str, python: str, build: list[str], deps: list[str], **extra: Any
) -> PythonSpec:
    """A PythonSpec with every ``-r`` file inlined and ``-c`` files and index options collected."""
    expander = _Expander(root, name)
    build_deps, dependencies = expander.expand(build, root), expander.expand(deps, root)
    constraints, options = tuple(expander.constraints), tuple(expander.options)
    return PythonSpec(python, build_deps, dependencies, constraints, options, **extra)


def expand_requirements(
    root: Path, origin: str, lines: list[str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(requirements, constraints, index options) of requirement lines, with every ``-r`` file
    inlined and ``-c`` files read (paths relative to the project at ``root``)."""
    expander = _Expander(root.resolve(), origin)
    requirements = expander.expand(lines, root.resolve())
    return requirements, tuple(expander.constraints), tuple(expander.options)


def load_env_file(path: Path, root: Path) -> YamlDoc:
    """An env file of the project, parsed (the parse cached by content)."""
    return _load_yaml(path, root.resolve())


def _load_yaml(path: Path, root: Path) -> YamlDoc:
    """The parsed env file, cached by content: a warm run imports no YAML parser (~10 ms).

    Only the parse is cached; the checks below run on every read.
    """
    relative = path.relative_to(root) if path.is_relative_to(root) else path
    data = read_project_file(root, relative, shown=path.name)
    key = speccache.digest(b"env-file", data)
    doc = speccache.lookup(key, path.name)
    if doc is None:
        from runner.project.yamlsafe import parse_yaml

        doc = parse_yaml(data, path.name)
        speccache.remember(key, doc)
    return doc


def _python_version(doc: YamlDoc, name: str) -> str:
    value = doc.data.get("python") if isinstance(doc.data, dict) else None
    if value is None:
        return current_python()
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError(f'{name}: python must be a version such as "3.11", got {value!r}')
    # The author's text: an unquoted 3.10 is the float 3.1 to YAML but "3.10" to the author.
    return check_python_request((doc.text(("python",)) or str(value)).strip(), name)


def check_python_request(request: str, name: str) -> str:
    """Refuse interpreter requests that are not version-like (they reach uv's argv)."""
    if not _PYTHON_REQUEST.match(request):
        raise SpecError(
            f"{name}: invalid python version {request!r}",
            hint='write a version such as python: "3.11" or "3.11.7"',
        )
    return request


def _str_list(data: dict[str, Any], key: str, name: str) -> list[str]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SpecError(f"{name}: {key} must be a list of requirement strings")
    return value


def read_conda_env(path: Path, root: Path) -> PythonSpec:
    """A conda YAML read for uv, as MLflow does: python pin + pip section; the rest dropped."""
    root = root.resolve()
    doc = _load_yaml(path, root)
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict) or not isinstance(data.get("dependencies") or [], list):
        raise SpecError(f"{path.name}: must be a mapping whose 'dependencies' is a list")
    python, build, pip, dropped = _split_conda_deps(data.get("dependencies") or [], path.name)
    warnings = []
    if dropped:
        warnings.append(
            "The following conda dependencies will not be installed in the "
            f"resulting environment: {dropped}"
        )
    if python is None:
        python = current_python()
        warnings.append(f"{path.name} does not pin python; using this interpreter's {python}")
    return _make_spec(root, path.name, python, build, pip, source="conda", warnings=(*warnings,))


def _split_conda_deps(
    deps: list[Any], name: str
) -> tuple[str | None, list[str], list[str], list[str]]:
    python: str | None = None
    build: list[str] = []
    pip: list[str] = []
    dropped: list[str] = []
    for dep in deps:
        if isinstance(dep, dict) and set(dep) == {"pip"}:
            pip.extend(_conda_pip_section(dep["pip"], name))
        elif not isinstance(dep, str):
            raise SpecError(
                f"{name}: invalid conda dependency: {dep!r}. Must be a string or "
                "a mapping of the form {pip: [...]}"
            )
        elif python is None and _CONDA_PYTHON.match(dep.strip()):
            python = _conda_python(dep.strip())
        elif _CONDA_BUILD_PACKAGE.match(dep.strip()):
            build.append(_conda_build_package(dep.strip()))
        else:
            dropped.append(dep)
    return python, build, pip, dropped


def _conda_pip_section(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SpecError(f"{name}: the pip section must be a list of requirement strings")
    return value


def _conda_python(dep: str) -> str:
    match = _CONDA_PYTHON.match(dep)
    assert match is not None
    op, version = match.group("op"), match.group("version")
    if not version:
        raise SpecError(
            f"Invalid dependency for python: {dep}. It must be pinned (e.g. python=3.8.13)."
        )
    if op in ("<", ">", "!=", "~="):
        raise SpecError(
            f"Invalid version comparator for python: '{op}'. "
            "Must be one of ['<=', '>=', '=', '==']."
        )
    # Like MLflow, the version itself is the request: "python>=3.8" asks for a 3.8.
    return check_python_request(version.removesuffix(".*").removesuffix("*").rstrip("."), dep)


def _conda_build_package(dep: str) -> str:
    match = _CONDA_BUILD_PACKAGE.match(dep)
    assert match is not None
    name, op, version = match.group("name", "op", "version")
    if not version:
        return name
    # conda's "=" means "this version or a sub-version": pip's "==" with a wildcard.
    if op == "=":
        return f"{name}=={version}" if "*" in version else f"{name}=={version}.*"
    return f"{name}{op}{version}"


class _Expander:
    """Inlines ``-r`` files and collects ``-c`` files, refusing paths outside the project."""

    def __init__(self, root: Path, origin: str) -> None:
        self.root = root  # resolved
        self.origin = origin
        self.constraints: list[str] = []
        self.options: list[str] = []

    def expand(
        self, lines: Iterable[str], base: Path, chain: Sequence[Path] = ()
    ) -> tuple[str, ...]:
        out: list[str] = []
        for line in _logical_lines(lines):
            self._add(line, base, chain, out)
        return tuple(out)

    def _add(self, line: str, base: Path, chain: Sequence[Path], out: list[str]) -> None:
        include = _INCLUDE.match(line)
        if include:
            path = self._include_path(include.group("path").strip(), base, chain)
            lines = self._read(path).splitlines()
            target = self.expand(lines, path.parent, (*chain, path))
            is_constraint = include.group("flag") in ("-c", "--constraint")
            (self.constraints if is_constraint else out).extend(target)
        elif line.split("=")[0].split()[0] in _GLOBAL_OPTIONS:
            if line not in self.options:
                self.options.append(line)
        else:
            out.append(line)

    def _include_path(self, name: str, base: Path, chain: Sequence[Path]) -> Path:
        where = chain[-1].name if chain else self.origin
        _check_include(name, where, len(chain))
        relative = os.path.join(base.relative_to(self.root), name)
        path = contained(self.root, relative, f"{where}: requirements file {name}")
        if path in chain:
            cycle = " -> ".join(p.name for p in (*chain, path))
            raise SpecError(f"{where}: requirements files include each other: {cycle}")
        if file_kind(path) is None:  # anything else but a file is refused when read
            raise SpecError(f"{where}: requirements file not found: {name}")
        return path

    def _read(self, path: Path) -> str:
        data = read_capped(path)
        try:
            return data.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            raise SpecError(f"{path.name}: invalid UTF-8 at byte offset {exc.start}") from exc


def _check_include(name: str, where: str, depth: int) -> None:
    if "://" in name:
        raise SpecError(
            f"{where}: remote requirements files are not supported: {name}",
            hint="copy the file into the project and refer to it by path",
        )
    if depth >= MAX_INCLUDE_DEPTH:
        raise SpecError(
            f"{where}: requirements files nested deeper than {MAX_INCLUDE_DEPTH} levels"
        )


def _logical_lines(lines: Iterable[str]) -> list[str]:
    """Requirement-file lines with comments dropped and backslash continuations joined."""
    out: list[str] = []
    pending = ""
    for raw in lines:
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = " ".join((pending + line).split())
        pending = ""
        if line:
            out.append(line)
    if pending.strip():
        out.append(" ".join(pending.split()))
    return out
