"""Turn a run request into a validated plan: source, spec, parameters, backend — no store writes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import BackendError, RunnerError, UsageError

if TYPE_CHECKING:
    from runner.project.records import ProjectSpec

DEFAULT_EXPERIMENT = "Default"
# Lone surrogates: what Python makes of bytes that are not UTF-8 (PEP 383), and any other.
_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class RunRequest:
    """What the user asked for, as the CLI or the Python API received it."""

    uri: str
    entry_point: str = "main"
    parameters: Mapping[str, str] = field(default_factory=dict)
    version: str | None = None
    env_manager: str | None = None
    backend: str | None = None  # None: the env manager's backend (docker_env: docker), else local
    backend_config: Mapping[str, Any] = field(default_factory=dict)
    experiment: str = DEFAULT_EXPERIMENT
    run_name: str | None = None
    parent_run_id: str | None = None
    cwd: Path = field(default_factory=Path.cwd)
    submodules: bool = False  # git sources only: fetch submodules (never by default)
    mlflow_api: bool = False  # serve the MLflow API to the run even if its env lacks mlflow
    python_match: str = "exact"  # "minor": the pin's newest installed patch release


@dataclass(frozen=True)
class Plan:
    """A request that passed every check; serialisable so a detached supervisor can run it."""

    project_dir: Path
    entry_point: str
    command: str
    parameters: dict[str, str]
    source: dict[str, Any]
    env_manager: str
    backend: str
    backend_config: dict[str, Any]
    experiment: str
    run_name: str | None
    parent_run_id: str | None
    cleanup_paths: tuple[Path, ...] = ()
    input_paths: tuple[str, ...] = ()  # local files/dirs named by `path` parameters
    # the runs:/ inputs among them: local copy → runs:/<full-run-id>/<artifact-path>
    input_sources: dict[str, str] = field(default_factory=dict)
    diff: bytes | None = field(default=None, repr=False)
    # for the user and the record: e.g. a working copy git cannot read (no commit recorded)
    warnings: tuple[str, ...] = ()
    python_match: str = "exact"
    # the values of `secret: true` parameters: masked in everything recorded or shown, and
    # never written to plan.json (a detached supervisor gets them through its environment)
    secrets: tuple[str, ...] = field(default=(), repr=False)
    # the parsed spec, kept in-process so it is not parsed twice; a detached supervisor reloads
    spec: ProjectSpec | None = field(default=None, repr=False, compare=False)
    # serve the MLflow API for the run's duration even if its environment has no mlflow
    mlflow_api: bool = False
    # the batch its supervisor joins (runner.execution.batch: "<folder>:<index>"), given to
    # that supervisor through its environment; never in plan.json
    batch: str | None = field(default=None, repr=False, compare=False)

    @property
    def recorded_command(self) -> str:
        """The command as recorded and shown, secret values masked."""
        from runner.project.params import mask_values

        return mask_values(self.command, self.secrets) if self.secrets else self.command

    def to_json(self) -> str:
        data = asdict(self)
        data["project_dir"] = str(self.project_dir)
        data["cleanup_paths"] = [str(p) for p in self.cleanup_paths]
        data["diff"] = None  # stored as its own artifact
        data.pop("spec")
        data.pop("batch")
        data["command"] = self.recorded_command
        data["has_secrets"] = bool(data.pop("secrets"))
        return json.dumps(data, indent=2, sort_keys=True)

    def secrets_json(self) -> str:
        """What a detached supervisor needs besides plan.json: the real command and secrets."""
        return json.dumps({"command": self.command, "secrets": list(self.secrets)})

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        data["project_dir"] = Path(data["project_dir"])
        data["cleanup_paths"] = tuple(Path(p) for p in data["cleanup_paths"])
        data["input_paths"] = tuple(data.get("input_paths", ()))
        data["warnings"] = tuple(data.get("warnings", ()))
        data.pop("has_secrets", None)
        return cls(**data)

    def with_secrets(self, text: str) -> Plan:
        """This plan (read back from plan.json) with the command and secrets of ``secrets_json``."""
        import dataclasses

        given = json.loads(text)
        return dataclasses.replace(self, command=given["command"], secrets=tuple(given["secrets"]))


def make_plan(request: RunRequest) -> Plan:
    """Fetch, parse and validate everything; cleans up the fetched source if a check fails."""
    from runner.source.fetch import fetch_project, remove_fetched

    _check_text(request)
    fetched = fetch_project(request.uri, request.version, submodules=request.submodules)
    try:
        return _plan_fetched(request, fetched)
    except BaseException:
        remove_fetched(fetched)
        raise


def plan_fetched(request: RunRequest, fetched: Any) -> Plan:
    """``make_plan`` for a project fetched already (the steps of a workflow share one fetch);
    the caller keeps ``fetched`` and removes it, so the plan cleans up only its own copies."""
    _check_text(request)
    return _plan_fetched(request, fetched)


def _check_text(request: RunRequest) -> None:
    """Everything recorded must be text: bytes that are not UTF-8 come from the command line
    as surrogate escapes, which no store, log or terminal can take."""
    for label, text in _recorded_texts(request):
        if not text.isascii() and _SURROGATE.search(text):
            raise UsageError(
                f"{label} is not valid UTF-8: '{_shown(text)}'",
                hint="runner records it as text; check the terminal's locale (LANG, LC_ALL)",
            )


def _recorded_texts(request: RunRequest) -> list[tuple[str, str]]:
    texts = [
        ("the project URI", request.uri),
        ("the entry point (-e)", request.entry_point),
        ("--experiment-name", request.experiment),
        ("--run-name", request.run_name or ""),
    ]
    for key, value in request.parameters.items():
        texts += [("a -P parameter name", key), (f"the value of -P {_shown(key)}", value)]
    return texts


def _shown(text: str, limit: int = 200) -> str:
    """``text`` with each undecodable byte written ``\\xNN``, as the user typed it; shortened."""
    escaped = _ESCAPED_BYTE.sub(lambda m: f"\\x{ord(m[0]) - 0xDC00:02x}", text)
    shown = escaped.encode("utf-8", "backslashreplace").decode("utf-8")
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _plan_fetched(request: RunRequest, fetched: Any) -> Plan:
    from runner.envs.select import choose_manager
    from runner.project.params import resolve_params
    from runner.project.spec import get_entry_point, load_spec

    spec = load_spec(fetched.project_dir)
    entry = get_entry_point(spec, request.entry_point)
    copies: list[Path] = []  # runs:/ values of path parameters get private local copies
    sources: dict[str, str] = {}  # and each copy's runs:/ origin
    try:
        manager = choose_manager(spec, request.env_manager)
        backend = choose_backend(request.backend, manager, spec.env.kind)
        copier = _copier(copies, sources, backend, request.backend_config)
        resolved = resolve_params(
            entry, request.parameters, cwd=request.cwd, locators={"runs": copier}
        )
        match_warnings = _python_match_warnings(manager, request.python_match)
        validate_backend(backend, request.backend_config, spec)
    except BaseException:
        _remove_copies(copies)
        raise
    return Plan(
        project_dir=fetched.project_dir,
        entry_point=entry.name,
        command=resolved.command,
        secrets=resolved.secrets,
        parameters=dict(resolved.recorded),
        source=fetched.provenance.record(),
        env_manager=manager,
        backend=backend,
        backend_config=dict(request.backend_config),
        experiment=request.experiment,
        run_name=request.run_name,
        parent_run_id=request.parent_run_id,
        cleanup_paths=(*fetched.cleanup_paths, *copies),
        input_paths=resolved.paths,
        input_sources=sources,
        diff=fetched.diff,
        warnings=(*fetched.provenance.warnings, *spec.warnings, *match_warnings),
        python_match=request.python_match,
        spec=spec,
        mlflow_api=request.mlflow_api,
    )


def _copier(
    copies: list[Path], sources: dict[str, str], backend: str, config: Mapping[str, Any]
) -> Callable[[str, str], str]:
    """Resolves a runs:/ value to a local copy, kept in ``copies`` (imported only when used),
    in the folder the backend's entry points can read; ``sources`` gets each copy's origin."""

    def copy(name: str, uri: str) -> str:
        from runner.backend import load_backend
        from runner.execution.artifacts import ArtifactCopies

        inputs_dir = getattr(load_backend(backend), "inputs_dir", None)
        artifacts = ArtifactCopies(inputs_dir(config) if callable(inputs_dir) else None)
        try:
            local = artifacts(name, uri)
        finally:
            copies.extend(artifacts.copies)
        sources[local] = artifacts.source
        return local

    return copy


def _remove_copies(paths: list[Path]) -> None:
    import shutil

    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def _python_match_warnings(manager: str, python_match: str) -> tuple[str, ...]:
    from runner.envs.prepare import PYTHON_MATCHES, honours_python_match
    from runner.envs.registry import get_manager

    if python_match not in PYTHON_MATCHES:
        raise UsageError(f"--python-match must be one of {', '.join(PYTHON_MATCHES)}")
    if honours_python_match(get_manager(manager), python_match):
        return ()
    return (f"--python-match {python_match} has no effect with the {manager} environment manager",)


def choose_backend(requested: str | None, manager: str, kind: str) -> str:
    """The environment manager's own backend when it has one (a docker_env project runs in a
    container, as in MLflow), else local; a requested backend must be able to run the env."""
    from runner.envs.select import default_backend

    default = default_backend(manager)
    if requested is None:
        return default or "local"
    if default is not None and requested != default and not _runs_images(requested):
        raise BackendError(
            f"this project has a {kind}: it runs on a container backend, not {requested!r}",
            hint=f"drop -b {requested} ({default} is chosen for {kind} projects), "
            f"or use -b {default}",
        )
    return requested


def _runs_images(name: str) -> bool:
    from runner.backend import load_backend

    return load_backend(name).runs_images


def validate_backend(name: str, config: Mapping[str, Any], spec: ProjectSpec) -> None:
    """Unknown backends, invalid configs, a transport the store cannot serve and failed
    preflight checks refuse the run before it exists (e.g. an unreachable Docker daemon)."""
    from runner.backend import load_backend
    from runner.execution.ingest import check_transport

    backend = load_backend(name)
    _check_config(name, backend.config_schema, config)
    check_transport(name, backend.tracking)
    backend.preflight(spec, config)


def _check_config(name: str, schema: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    if not config:
        return
    import jsonschema

    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(config),
        key=lambda e: list(e.path),
    )
    if errors:
        lines = "; ".join(f"{'.'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors)
        raise BackendError(f"invalid backend config for {name!r}: {lines}")


def parse_backend_config(value: str | None) -> dict[str, Any]:
    """``-c`` takes a JSON file path or an inline JSON object, as MLflow's does, or a YAML
    file (``.yaml``/``.yml``, loaded safely: duplicate keys and custom tags are refused)."""
    if not value:
        return {}
    if value.endswith((".yaml", ".yml")) and Path(value).is_file():
        return _yaml_config(Path(value))
    text = Path(value).read_text() if value.endswith(".json") and Path(value).is_file() else value
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunnerError(f"Invalid backend config JSON. Parse error: {exc}") from exc
    if not isinstance(data, dict):
        raise RunnerError("backend config must be a JSON object")
    return data


def _yaml_config(path: Path) -> dict[str, Any]:
    from runner.project.yamlsafe import load_yaml

    data = load_yaml(path).data
    if not isinstance(data, dict):
        raise RunnerError(f"backend config {path} must be a YAML mapping")
    return data


def parse_docker_args(items: Sequence[str]) -> dict[str, str | bool]:
    """MLflow's ``-A name=value`` / ``-A flag`` list → ``{"name": "value", "flag": True}``."""
    parsed: dict[str, str | bool] = {}
    for item in items:
        name, sep, value = item.partition("=")
        parsed[name.strip()] = value if sep else True
    return parsed
