"""The workflow file: safe YAML, its JSON Schema, references and the DAG checked, frozen records.

Every problem is found before anything runs and reported together, one ``file:line:col path:
message`` line each, as for MLproject files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import SpecError
from runner.project.records import Parameter
from runner.project.spec import Problem, problem_at, schema_problems
from runner.project.yamldoc import KeyPath, YamlDoc
from runner.workflow import dag
from runner.workflow.durations import parse_duration
from runner.workflow.refs import BadReference, Ref, references

SCHEMA_NAME = "workflow.schema.json"
HINT = "the workflow file format is described in schemas/workflow.schema.json"
DEFAULT_RETRY_DELAY = 2.0


@dataclass(frozen=True)
class StepSpec:
    """One step: an entry point of a project, with parameters that may hold references."""

    name: str
    project: str  # as written: a folder relative to the workflow file, or a git URL
    entry_point: str = "main"
    version: str | None = None
    needs: tuple[str, ...] = ()
    parameters: dict[str, str] = field(default_factory=dict)
    backend: str | None = None
    backend_config: dict[str, Any] = field(default_factory=dict)
    env_manager: str | None = None
    retries: int = 0
    retry_delay: float = DEFAULT_RETRY_DELAY
    timeout: float | None = None
    cache: bool = True


@dataclass(frozen=True)
class WorkflowSpec:
    """A validated workflow file (or a generated one, for a sweep)."""

    name: str
    root: Path  # relative step projects resolve against it
    steps: dict[str, StepSpec]
    parameters: tuple[Parameter, ...] = ()
    on_failure: str = "stop"
    max_parallel: int | None = None
    text: str = ""  # the file as written, kept as an artifact of the workflow run

    def needs(self) -> dict[str, tuple[str, ...]]:
        return {name: step.needs for name, step in self.steps.items()}


def load_workflow(path: Path) -> WorkflowSpec:
    """Read, validate and check ``path``; one SpecError lists every problem."""
    from runner.project.files import read_capped

    if not path.is_file():
        raise SpecError(f"workflow file {path} does not exist")
    data = read_capped(path, shown=path.name)
    return parse_workflow(data, path.name, path.resolve().parent)


def parse_workflow(data: bytes, name: str, root: Path) -> WorkflowSpec:
    from runner.project import speccache

    schema = _schema_path().read_bytes()
    key = speccache.digest(schema, data)  # the schema is in the key: no clash with MLprojects
    doc = speccache.lookup(key, name) or _parse_and_validate(data, name, schema, key)
    return _Builder(doc, root, data.decode()).build()


def _parse_and_validate(data: bytes, name: str, schema: bytes, key: str) -> YamlDoc:
    """A file seen before skips this (YAML parsing and importing jsonschema cost ~0.2 s)."""
    from runner.project import speccache
    from runner.project.yamlsafe import parse_yaml

    doc = parse_yaml(data, name)
    if doc.data is None:
        raise SpecError(f"{name}:1:1: the file is empty", hint=HINT)
    problems = schema_problems(doc, json.loads(schema))
    if problems:
        raise _error(problems)
    speccache.remember(key, doc)
    return doc


def _schema_path() -> Path:
    import runner

    package = Path(runner.__file__).parent
    in_repo = package.parent / "schemas" / SCHEMA_NAME
    return in_repo if in_repo.is_file() else package / "_schemas" / SCHEMA_NAME


def _error(problems: list[Problem]) -> SpecError:
    ordered = sorted(problems, key=lambda p: (p.line, p.column))
    lines = dict.fromkeys(f"{p.where}: {p.message}" for p in ordered)
    return SpecError("\n".join(lines), hint=HINT)


class _Builder:
    """Records from schema-valid data, collecting what a schema cannot check."""

    def __init__(self, doc: YamlDoc, root: Path, text: str) -> None:
        self.doc, self.root, self.text = doc, root, text
        self.data: dict[str, Any] = doc.data
        self.problems: list[Problem] = []

    def problem(self, path: KeyPath, message: str) -> None:
        self.problems.append(problem_at(self.doc, path, message))

    def build(self) -> WorkflowSpec:
        parameters = tuple(self._parameter(n, b) for n, b in self._section("parameters").items())
        steps = {name: self._step(name, body) for name, body in self._section("steps").items()}
        self._check_needs(steps)
        self._check_references(steps, {p.name for p in parameters})
        if self.problems:
            raise _error(self.problems)
        name = self.doc.text(("name",)) if "name" in self.data else None
        return WorkflowSpec(
            name=name or self.doc.name.rsplit(".", 1)[0],
            root=self.root,
            steps=steps,
            parameters=parameters,
            on_failure=self.data.get("on_failure", "stop"),
            max_parallel=self.data.get("max_parallel"),
            text=self.text,
        )

    def _section(self, key: str) -> dict[str, Any]:
        section: dict[str, Any] = self.data.get(key) or {}
        return section

    def _parameter(self, name: str, body: str | dict[str, Any]) -> Parameter:
        from runner.project.params import type_error

        if isinstance(body, str):
            return Parameter(name, body, None)
        ptype = body.get("type", "string")
        default = self.doc.text(("parameters", name, "default")) if "default" in body else None
        if default is not None and (problem := type_error(name, ptype, default)):
            self.problem(("parameters", name, "default"), problem)
        return Parameter(name, ptype, default)

    def _step(self, name: str, body: dict[str, Any]) -> StepSpec:
        where = ("steps", name)
        values = body.get("parameters") or {}
        texts = {k: self.doc.text((*where, "parameters", k)) or str(v) for k, v in values.items()}
        return StepSpec(
            name=name,
            project=body["project"],
            entry_point=body.get("entry_point", "main"),
            version=body.get("version"),
            needs=tuple(body.get("needs") or ()),
            parameters=texts,
            backend=body.get("backend"),
            backend_config=dict(body.get("backend_config") or {}),
            env_manager=body.get("env_manager"),
            retries=body.get("retries", 0),
            retry_delay=self._duration((*where, "retry_delay"), body) or 0.0
            if "retry_delay" in body
            else DEFAULT_RETRY_DELAY,
            timeout=self._duration((*where, "timeout"), body),
            cache=body.get("cache", True),
        )

    def _duration(self, path: KeyPath, body: dict[str, Any]) -> float | None:
        if path[-1] not in body:
            return None
        try:
            return parse_duration(body[path[-1]])
        except ValueError as exc:
            self.problem(path, str(exc))
            return None

    def _check_needs(self, steps: dict[str, StepSpec]) -> None:
        for step in steps.values():
            for index, need in enumerate(step.needs):
                if need not in steps:
                    self.problem(("steps", step.name, "needs", index), _unknown_step(need, steps))
                elif need == step.name:
                    self.problem(("steps", step.name, "needs", index), "a step cannot need itself")
        cycle = dag.cycle_in({s.name: s.needs for s in steps.values()})
        if cycle is not None and len(cycle) > 2:
            self.problem(
                ("steps", cycle[0], "needs"), f"the steps form a cycle: {' → '.join(cycle)}"
            )

    def _check_references(self, steps: dict[str, StepSpec], params: set[str]) -> None:
        for step in steps.values():
            for key, value in step.parameters.items():
                path = ("steps", step.name, "parameters", key)
                try:
                    found = references(value)
                except BadReference as exc:
                    self.problem(path, str(exc))
                    continue
                for ref in found:
                    if (message := _reference_problem(ref, step, steps, params)) is not None:
                        self.problem(path, message)


def _reference_problem(
    ref: Ref, step: StepSpec, steps: dict[str, StepSpec], params: set[str]
) -> str | None:
    if ref.step is None:
        if ref.name not in params:
            known = ", ".join(sorted(params)) or "none are declared"
            return f"unknown workflow parameter in ${{{{ {ref} }}}} (parameters: {known})"
        return None
    if ref.step not in steps:
        return f"${{{{ {ref} }}}}: {_unknown_step(ref.step, steps)}"
    if ref.step not in step.needs:
        return (
            f"${{{{ {ref} }}}} refers to step '{ref.step}', which is not in the needs of "
            f"step '{step.name}' (add it to needs: so it runs first)"
        )
    return None


def _unknown_step(name: str, steps: dict[str, StepSpec]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(steps), n=1)
    return f"unknown step '{name}'" + (f" (did you mean '{close[0]}'?)" if close else "")
