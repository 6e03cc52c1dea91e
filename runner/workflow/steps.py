"""A step turned into a run: its project fetched once per workflow, its plan, its record."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.execution.plan import DEFAULT_EXPERIMENT, Plan, RunRequest
from runner.status import RunStatus

if TYPE_CHECKING:
    from runner.source.fetch import FetchedProject
    from runner.store import Store
    from runner.workflow.spec import StepSpec

STEP_TAG = "runner.step"
ATTEMPT_TAG = "runner.attempt"
CACHE_KEY_TAG = "runner.cache_key"
CACHED_FROM_TAG = "runner.cached_from"
TIMEOUT_TAG = "runner.timed_out"


@dataclass(frozen=True)
class Defaults:
    """What the command line sets for every step that does not set it itself."""

    backend: str | None = None
    backend_config: Mapping[str, Any] = field(default_factory=dict)
    env_manager: str | None = None
    experiment: str = DEFAULT_EXPERIMENT


def step_uri(root: Path, project: str) -> str:
    """A relative folder resolves against the workflow file's folder; URLs stay as written."""
    from runner.source import giturl
    from runner.source.fetch import split_uri

    location, sub = split_uri(project)
    if "://" in location or giturl.is_scp_like(location) or Path(location).is_absolute():
        return project
    return str(root / location) + (f"#{sub}" if sub else "")


class Sources:
    """Each distinct project is fetched (cloned, extracted, inspected) once per workflow run
    and removed at its end; steps' plans never remove it themselves."""

    def __init__(self) -> None:
        self._fetched: dict[tuple[str, str | None], FetchedProject] = {}

    def get(self, uri: str, version: str | None) -> FetchedProject:
        from runner.source.fetch import fetch_project

        if (uri, version) not in self._fetched:
            self._fetched[(uri, version)] = fetch_project(uri, version)
        return dataclasses.replace(self._fetched[(uri, version)], cleanup_paths=())

    def close(self) -> None:
        from runner.source.fetch import remove_fetched

        for fetched in self._fetched.values():
            remove_fetched(fetched)
        self._fetched.clear()


class Planner:
    """Plans of steps under one workflow run (its id is set once the run exists)."""

    def __init__(self, root: Path, defaults: Defaults, label: str) -> None:
        self.root, self.defaults, self.label = root, defaults, label
        self.parent_run_id: str | None = None
        self.sources = Sources()
        self.early: dict[str, Plan] = {}  # made by check_all, used by the first attempt

    def check_all(self, steps: Mapping[str, StepSpec], params: Mapping[str, str]) -> None:
        """Plan every step before anything runs: unknown entry points and backends, and bad
        parameters of steps that take no output of another, refuse the whole workflow."""
        from runner.errors import RunnerError
        from runner.workflow.refs import references, substitute

        problems = []
        for step in steps.values():
            needs_outputs = any(
                ref.step for value in step.parameters.values() for ref in references(value)
            )
            try:
                if needs_outputs:  # its parameters are known only once its needs have run
                    self._check_entry_point(step)
                    continue
                values = {
                    k: substitute(v, lambda ref: params[ref.name])
                    for k, v in step.parameters.items()
                }
                self.early[step.name] = self.plan(step, values)
            except RunnerError as exc:
                problems.append(f"step {step.name}: {exc.message}")
        if problems:
            self.close()
            raise RunnerError("\n".join(problems), hint="nothing was run or recorded")

    def _check_entry_point(self, step: StepSpec) -> None:
        from runner.project.spec import get_entry_point, load_spec

        fetched = self.sources.get(step_uri(self.root, step.project), step.version)
        get_entry_point(load_spec(fetched.project_dir), step.entry_point)

    def backend_of(self, step: StepSpec) -> str:
        """The backend named for the step, known before its plan is ("local" when none is: a
        project's own default, docker for a docker_env, is not one that batches)."""
        return step.backend or self.defaults.backend or "local"

    def plan(self, step: StepSpec, values: Mapping[str, str]) -> Plan:
        from runner.execution.plan import plan_fetched

        early = self.early.pop(step.name, None)
        if early is not None:
            return dataclasses.replace(early, parent_run_id=self.parent_run_id)
        request = RunRequest(
            uri=step_uri(self.root, step.project),
            entry_point=step.entry_point,
            parameters=dict(values),
            version=step.version,
            env_manager=step.env_manager or self.defaults.env_manager,
            backend=step.backend or self.defaults.backend,
            backend_config=step.backend_config or dict(self.defaults.backend_config),
            experiment=self.defaults.experiment,
            run_name=f"{self.label}.{step.name}",
            parent_run_id=self.parent_run_id,
            cwd=self.root,
        )
        return plan_fetched(request, self.sources.get(request.uri, step.version))

    def close(self) -> None:
        """The fetched projects and the input copies of plans that never ran go."""
        for plan in self.early.values():
            remove_copies(plan)
        self.early.clear()
        self.sources.close()


def submit_step(store: Store, plan: Plan, tags: Mapping[str, str]) -> str:
    """The step's run (SCHEDULED, owned by this process until its supervisor takes it)."""
    from runner.execution.orchestrator import submit

    return submit(plan, store, tags)


def record_reused(store: Store, plan: Plan, tags: Mapping[str, str]) -> str:
    """A step run that reuses an earlier FINISHED one: recorded FINISHED at once (its plan
    and artifacts are those of the run it reuses)."""
    from runner.execution.orchestrator import new_run_of

    run_id = store.create_run(new_run_of(plan, tags))
    store.finish_run(run_id, RunStatus.FINISHED, 0, None)
    return run_id


def remove_copies(plan: Plan) -> None:
    """A plan that will not run: its private input copies go now."""
    import shutil

    for path in plan.cleanup_paths:
        shutil.rmtree(path, ignore_errors=True)
