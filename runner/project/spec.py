"""The one MLproject parser: YAML → schema validation → frozen ProjectSpec records."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any, NamedTuple

import runner
from runner.errors import SpecError
from runner.project import speccache
from runner.project.files import REGULAR, contained, file_kind, read_capped
from runner.project.params import fits_type, template_problems
from runner.project.records import (
    DockerBuild,
    DockerEnv,
    EntryPoint,
    EnvKind,
    EnvSpec,
    Parameter,
    ProjectSpec,
)
from runner.project.yamldoc import KeyPath, YamlDoc

# --- loading -------------------------------------------------------------------------------------

_ENV_KEYS = ("conda_env", "docker_env", "python_env")
_ENV_FILE_WORDS = {"python_env": "python_env file", "conda_env": "conda environment file"}
_IMPLICIT_ENV_FILES: tuple[tuple[EnvKind, str], ...] = (
    ("python_env", "python_env.yaml"),
    ("conda_env", "conda.yaml"),
)
_SCRIPT_RUNNERS = {".py": "python", ".sh": "bash"}
_SCHEMA_NAME = "mlproject.schema.json"
SCHEMA_HINT = "`runner spec schema` prints the MLproject format (a JSON Schema)"
# Keys MLflow reads in these mappings; others are ignored there, so here they are warnings.
# (tests check these against the schema's properties, its one description of the format)
ENTRY_POINT_KEYS = ("command", "parameters")
PARAMETER_KEYS = ("type", "default", "secret")
_NO_IMAGE = "Docker environment specified but no image attribute found"
# MLflow's wording for docker_env problems, which users may already search for.
_DOCKER_LISTS: dict[KeyPath, str] = {
    ("docker_env", "volumes"): "Docker volumes must be a list of strings, "
    'e.g.: \'["/path1/:/path1", "/path2/:/path2"]\'',
    ("docker_env", "environment"): "Docker environment must be a list containing either strings "
    "(to copy environment variables from host system) or lists of string pairs [NAME, VALUE]",
}
_KINDS = {
    "string": "a string", "object": "a mapping", "array": "a list", "number": "a number",
    "boolean": "a boolean", "null": "null", "integer": "an integer",
}  # fmt: skip


class _Problem(NamedTuple):
    line: int
    column: int
    where: str
    message: str


def load_spec(project_dir: Path) -> ProjectSpec:
    """Load and validate the project's MLproject (if any) into frozen records.

    All problems are reported together in one SpecError, one ``file:line:col path: message``
    line each. A project without an MLproject gets its environment from implicit files.
    """
    root = project_dir.resolve()
    if not root.is_dir():
        raise SpecError(f"project directory {root} does not exist")
    spec_file = find_spec_file(root)
    if spec_file is None:
        return ProjectSpec(root=root, name=None, env=_implicit_env(root))
    data = read_capped(spec_file, shown=spec_file.name)
    key = speccache.digest(_schema_path().read_bytes(), data)
    doc = speccache.lookup(key, spec_file.name) or _parse_and_validate(data, spec_file.name, key)
    return _SpecBuilder(root, spec_file, doc).build()


def _parse_and_validate(data: bytes, name: str, key: str) -> YamlDoc:
    from runner.project.yamlsafe import parse_yaml  # lazy: a cached document needs no YAML parser

    doc = parse_yaml(data, name)
    if doc.data is None:
        raise SpecError(f"{doc.name}:1:1: the file is empty", hint=SCHEMA_HINT)
    problems = _env_key_problems(doc) + _validate(doc, json.loads(_schema_path().read_bytes()))
    if problems:
        raise _spec_error(problems)
    speccache.remember(key, doc)
    return doc


def find_spec_file(root: Path) -> Path | None:
    """The MLproject file in ``root``, matched case-insensitively (files first, then sorted).

    It must stay inside the project through links; one that is not a file (a FIFO, a device)
    is refused when read, saying what it is.
    """
    names = sorted(os.listdir(root))
    name = _spec_name(root, names)
    if name is None:
        _refuse_yaml_suffix(names)
        return None
    contained(root, name)
    return root / name


def _spec_name(root: Path, names: list[str]) -> str | None:
    candidates = [n for n in names if n.lower() == "mlproject"]
    # A directory "mlproject" may well be a Python package: only the exact name is one.
    usable = [n for n in candidates if n == "MLproject" or not (root / n).is_dir()]
    return next((n for n in usable if (root / n).is_file()), usable[0] if usable else None)


def _refuse_yaml_suffix(names: list[str]) -> None:
    # MLflow silently ignores MLproject.yaml, which leaves users puzzled; say so instead.
    for name in names:
        if name.lower() in ("mlproject.yaml", "mlproject.yml"):
            raise SpecError(
                f"found {name}, but the project file must be named exactly 'MLproject'",
                hint=f"rename {name} to MLproject (MLflow ignores {name} too)",
            )


def get_entry_point(spec: ProjectSpec, name: str) -> EntryPoint:
    """The declared entry point ``name``, or a ``.py``/``.sh`` script inside the project."""
    for entry in spec.entry_points:
        if entry.name == name:
            return entry
    runner_cmd = _SCRIPT_RUNNERS.get(os.path.splitext(name)[1])
    if runner_cmd is None or "\0" in name:
        declared = [entry.name for entry in spec.entry_points]
        raise SpecError(
            f"Could not find {name} among entry points {declared} or interpret {name} as a "
            f"runnable script. Supported script file extensions: {list(_SCRIPT_RUNNERS)}",
            hint="declare it under entry_points in MLproject, or pass a .py or .sh script path",
        )
    _check_script(spec.root, name)
    # A leading '-' would make python/bash read the script name as an option.
    script = f"./{name}" if name.startswith("-") else name
    return EntryPoint(name=name, command=f"{runner_cmd} {shlex.quote(script)}")


def _check_script(root: Path, name: str) -> None:
    script = contained(root, name, f"entry point '{name}'")
    if not script.is_file():
        raise SpecError(f"entry point script '{name}' was not found in the project {root}")


def _implicit_env(root: Path) -> EnvSpec:
    for kind, file_name in _IMPLICIT_ENV_FILES:
        # lexists: a link out of the project is refused, not silently skipped
        if os.path.lexists(root / file_name):
            return EnvSpec(kind=kind, file=contained(root, file_name))
    return EnvSpec(kind="system")


# --- schema validation (a cache hit skips it: importing jsonschema costs ~100 ms) ---------------


def _schema_path() -> Path:
    return schema_path(_SCHEMA_NAME)


def schema_path(file_name: str) -> Path:
    """One of runner's JSON Schemas: in the source tree, or as installed in the package."""
    package = Path(runner.__file__).parent
    in_repo = package.parent / "schemas" / file_name
    return in_repo if in_repo.is_file() else package / "_schemas" / file_name


def _validate(doc: YamlDoc, schema: dict[str, Any]) -> list[_Problem]:
    from jsonschema import Draft202012Validator  # lazy: see the section comment

    validator = Draft202012Validator(schema)
    return [
        problem
        for error in validator.iter_errors(doc.data)
        for problem in _translate(doc, tuple(error.absolute_path), error)
    ]


def _translate(doc: YamlDoc, path: KeyPath, error: Any) -> list[_Problem]:
    if error.validator == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        unknown = [key for key in error.instance if key not in known]
        return [_problem(doc, (*path, key), _unknown_key(key, known)) for key in unknown]
    if error.validator == "required":
        missing = [key for key in error.validator_value if key not in error.instance]
        return [_problem(doc, path, _message((*path, key), error, key)) for key in missing]
    return [_problem(doc, path, _message(path, error, None))]


def _unknown_key(key: str, known: list[str]) -> str:
    return f"unknown key '{key}'{_did_you_mean(key, known)}"


def _did_you_mean(key: str, known: list[str]) -> str:
    import difflib  # only when a key is unknown

    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _message(path: KeyPath, error: Any, missing: str | None) -> str:
    if path == ("docker_env", "image") and error.validator in ("required", "minLength"):
        return _NO_IMAGE
    if path[:2] in _DOCKER_LISTS:
        return _DOCKER_LISTS[path[:2]]
    if missing is not None:
        return f"missing required key '{missing}'"
    if error.validator == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else expected
        wanted = " or ".join(_KINDS.get(name, name) for name in names)
        return f"expected {wanted}, got {_kind_of(error.instance)}"
    if error.validator == "minLength":
        return "must not be empty"
    return str(error.message)


def _kind_of(value: Any) -> str:
    kinds = {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}
    return _KINDS[kinds.get(type(value), "object" if isinstance(value, dict) else "null")]


def _env_key_problems(doc: YamlDoc) -> list[_Problem]:
    present = [key for key in _ENV_KEYS if isinstance(doc.data, dict) and key in doc.data]
    if len(present) < 2:
        return []
    last = max(present, key=lambda key: doc.mark((key,)))
    names = ", ".join(f"'{key}'" for key in present)
    return [_problem(doc, (last,), f"Project cannot contain multiple environment fields: {names}")]


def _problem(doc: YamlDoc, path: KeyPath, message: str) -> _Problem:
    mark = doc.mark(path)
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return _Problem(
        mark.line, mark.column, f"{doc.name}:{mark}{' ' + where if where else ''}", message
    )


def _spec_error(problems: list[_Problem]) -> SpecError:
    ordered = sorted(problems, key=lambda p: (p.line, p.column))  # stable: keeps template order
    lines = dict.fromkeys(f"{p.where}: {p.message}" for p in ordered)
    return SpecError("\n".join(lines), hint=SCHEMA_HINT)


# --- records from validated data -----------------------------------------------------------------


class _SpecBuilder:
    """Builds the records from schema-valid data, collecting the checks a schema cannot do."""

    def __init__(self, root: Path, spec_file: Path, doc: YamlDoc) -> None:
        self.root, self.spec_file, self.doc = root, spec_file, doc
        self.data: dict[str, Any] = doc.data
        self.problems: list[_Problem] = []
        self.warnings: list[_Problem] = []

    def problem(self, path: KeyPath, message: str) -> None:
        self.problems.append(_problem(self.doc, path, message))

    def warn_unknown(self, path: KeyPath, body: dict[str, Any], known: tuple[str, ...]) -> None:
        for key in body:
            if key not in known:
                hint = _did_you_mean(key, list(known))
                message = f"unknown key '{key}' ignored, as MLflow ignores it{hint}"
                self.warnings.append(_problem(self.doc, (*path, key), message))

    def build(self) -> ProjectSpec:
        env = self._env()
        entries = self.data.get("entry_points") or {}
        entry_points = tuple(self._entry_point(name, body) for name, body in entries.items())
        if self.problems:
            raise _spec_error(self.problems)
        name = None if self.data.get("name") is None else self.doc.text(("name",))
        ordered = sorted(self.warnings, key=lambda p: (p.line, p.column))
        warnings = tuple(f"{p.where}: {p.message}" for p in ordered)
        return ProjectSpec(self.root, name, env, entry_points, self.spec_file, warnings)

    def _env(self) -> EnvSpec:
        if self.data.get("docker_env"):
            return EnvSpec(kind="docker_env", docker=self._docker(self.data["docker_env"]))
        for kind in ("python_env", "conda_env"):
            if self.data.get(kind):
                return EnvSpec(kind=kind, file=self._env_file(kind, self.data[kind]))
        return _implicit_env(self.root)

    def _env_file(self, key: str, relative: str) -> Path | None:
        path = self._contained((key,), relative, f"{key} file '{relative}'")
        kind = None if path is None else file_kind(path)
        if path is not None and kind is None:
            shown = os.path.normpath(self.root / relative)
            self.problem(
                (key,),
                f"Project specified {_ENV_FILE_WORDS[key]} {shown}, but no such file was found.",
            )
        elif kind not in (None, REGULAR):
            self.problem((key,), f"{key} file '{relative}' is {kind}, not a file: refused")
        return path

    def _contained(self, path: KeyPath, relative: str, shown: str) -> Path | None:
        try:
            return contained(self.root, relative, shown)
        except SpecError as exc:
            self.problem(path, exc.message)
            return None

    def _docker(self, body: dict[str, Any]) -> DockerEnv:
        base = ("docker_env",)
        environment = tuple(
            (item, None)
            if isinstance(item, str)
            else (item[0], self._text((*base, "environment", i, 1)))
            for i, item in enumerate(body.get("environment") or ())
        )
        build = self._build(body["build"]) if "build" in body else None
        return DockerEnv(body["image"], tuple(body.get("volumes") or ()), environment, build)

    def _build(self, body: dict[str, Any]) -> DockerBuild:
        path = ("docker_env", "build")
        context = body.get("context", ".")
        dockerfile = body.get("dockerfile", "Dockerfile")
        if self._contained((*path, "context"), context, f"build context '{context}'"):
            where = os.path.join(context, dockerfile)
            self._contained((*path, "dockerfile"), where, f"dockerfile '{dockerfile}'")
        args = tuple((k, self._text((*path, "args", k))) for k in body.get("args") or {})
        return DockerBuild(context, dockerfile, args)

    def _text(self, path: KeyPath) -> str:
        return self.doc.text(path) or ""

    def _entry_point(self, name: str, body: dict[str, Any]) -> EntryPoint:
        path = ("entry_points", name)
        self.warn_unknown(path, body, ENTRY_POINT_KEYS)
        declared = body.get("parameters") or {}
        params = tuple(
            self._parameter((*path, "parameters", key), key, value)
            for key, value in declared.items()
        )
        for problem in template_problems(body["command"], [p.name for p in params]):
            self.problem((*path, "command"), problem)
        return EntryPoint(name, body["command"], params)

    def _parameter(self, path: KeyPath, name: str, body: str | dict[str, Any]) -> Parameter:
        if isinstance(body, str):
            return Parameter(name, body, None)
        self.warn_unknown(path, body, PARAMETER_KEYS)
        ptype, secret = body.get("type", "string"), bool(body.get("secret", False))
        if body.get("default") is None:
            return Parameter(name, ptype, None, secret)
        # as MLflow passes it: str() of the YAML value (.0 → 0.0, yes → True); text stays text
        default = str(body["default"])
        if not fits_type(ptype, default):
            self.problem(
                (*path, "default"),
                f"default {default!r} for parameter '{name}' is not a valid {ptype}",
            )
        return Parameter(name, ptype, default, secret)


# Other documents validated the same way (the workflow file) report their problems alike.
Problem = _Problem
schema_problems = _validate
problem_at = _problem
