"""MLflow experiments over the store's: ids are the database's, names are the runner's."""

from __future__ import annotations

import re
from typing import Any, Protocol

from runner.server.mlflow import protocol as p
from runner.server.mlflow.entities import experiment_json
from runner.store import Store

Experiment = tuple[int, str, int]  # (id, name, created ms), as SqlRunStore.experiments gives

# MLflow's default experiment is "0"; the runner's default one is named "Default".
DEFAULT_ID = "0"
DEFAULT_NAME = "Default"
MAX_RESULTS = 1000


class ExperimentStore(Store, Protocol):
    """A store that also lists and creates experiments (the SQL stores do)."""

    def experiments(self) -> list[Experiment]: ...

    def create_experiment(self, name: str) -> int: ...


class Experiments:
    """The handlers of ``/mlflow/experiments/...`` and the id/name mapping runs need."""

    def __init__(self, store: ExperimentStore) -> None:
        self.store = store

    def by_name(self, name: str) -> Experiment | None:
        return next((e for e in self.store.experiments() if e[1] == name), None)

    def by_id(self, experiment_id: str) -> Experiment:
        found = self.store.experiments()
        match = next((e for e in found if str(e[0]) == experiment_id), None)
        if match is None and experiment_id == DEFAULT_ID:
            match = next((e for e in found if e[1] == DEFAULT_NAME), None)
            if match is None:
                return self._created(DEFAULT_NAME)
        if match is None:
            raise p.MlflowError(p.MISSING, f"No Experiment with id={experiment_id} exists", 404)
        return match

    def id_of(self, name: str) -> str:
        """The id of the experiment a run records by name (made on first use)."""
        found = self.by_name(name)
        return str(found[0] if found else self.store.create_experiment(name))

    def _created(self, name: str) -> Experiment:
        new_id = self.store.create_experiment(name)
        return next(e for e in self.store.experiments() if e[0] == new_id)

    # -- handlers ------------------------------------------------------------------------

    def get(self, fields: p.Fields) -> dict[str, Any]:
        found = self.by_id(p.text(fields, "experiment_id"))
        return {"experiment": experiment_json(*found)}

    def get_by_name(self, fields: p.Fields) -> dict[str, Any]:
        name = p.text(fields, "experiment_name")
        found = self.by_name(name)
        if found is None:
            raise p.MlflowError(p.MISSING, f"Could not find experiment with name '{name}'", 404)
        return {"experiment": experiment_json(*found)}

    def create(self, fields: p.Fields) -> dict[str, Any]:
        name = p.text(fields, "name")
        if self.by_name(name) is not None:
            raise p.MlflowError(p.EXISTS, f"Experiment '{name}' already exists.")
        return {"experiment_id": str(self.store.create_experiment(name))}

    def search(self, fields: p.Fields) -> dict[str, Any]:
        """All experiments, or those whose name matches ``name = '...'`` / ``name LIKE '...'``."""
        limit = p.integer(fields, "max_results", MAX_RESULTS) or MAX_RESULTS
        offset = p.integer({"page_token": fields.get("page_token")}, "page_token", 0) or 0
        matches = name_filter(p.text(fields, "filter", required=False))
        found = [e for e in self.store.experiments() if matches(e[1])]
        page = found[offset : offset + limit]
        body: dict[str, Any] = {"experiments": [experiment_json(*e) for e in page]}
        if offset + limit < len(found):
            body["next_page_token"] = str(offset + limit)
        return body


_NAME_FILTER = re.compile(
    r"^\s*(?:attributes\.)?name\s*(=|!=|LIKE|ILIKE)\s*(['\"])(.*)\2\s*$", re.IGNORECASE
)


def name_filter(text: str) -> Any:
    """A predicate on experiment names for the filters clients send; others are refused."""
    if not text.strip():
        return lambda name: True
    match = _NAME_FILTER.match(text)
    if match is None:
        raise p.invalid(
            "filter", f"only `name = '...'` or `name LIKE '...'` is supported: {text!r}"
        )
    op, value = match.group(1).upper(), match.group(3)
    if op in ("=", "!="):
        return (lambda name: name == value) if op == "=" else (lambda name: name != value)
    from runner.server.mlflow.search import like_pattern

    pattern = like_pattern(value, ignore_case=op == "ILIKE")
    return lambda name: pattern.fullmatch(name) is not None
