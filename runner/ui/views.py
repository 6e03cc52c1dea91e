"""What each page shows, read from the store and the artifacts (synchronous: a worker thread)."""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from starlette.datastructures import QueryParams
from starlette.responses import Response, StreamingResponse

from runner.errors import RunnerError
from runner.server.artifacts import LocalArtifactStore, contained_artifact_path
from runner.server.http import BadRequest, Conflict
from runner.store import MetricPoint, RunRecord
from runner.ui import charts, provenance
from runner.ui.filters import parse_filter, run_query
from runner.ui.table import TableRequest, load_table

if TYPE_CHECKING:
    from runner.server.artifacts import ArtifactStore
    from runner.store.core import SqlRunStore

PAGE_SIZES = (25, 50, 100, 250, 500)
STATUSES = ("SCHEDULED", "RUNNING", "FINISHED", "FAILED", "KILLED")
MAX_CHARTS = 12  # metric keys charted on a run page; the rest are listed with their values
MAX_COMPARED = 10
VALUES_PAGE = 1000
INLINE_TEXT = 512 * 1024  # bytes of a text artifact shown on its page


class Views:
    """The pages' data over one store and artifact store."""

    def __init__(self, store: SqlRunStore, artifacts: ArtifactStore) -> None:
        self.store = store
        self.files = artifacts

    # -- runs table ------------------------------------------------------------------------

    def runs(self, query: QueryParams) -> dict[str, Any]:
        text = query.get("filter", "")
        experiment = query.get("experiment") or None
        status = query.get("status") or None
        sort, descending = query.get("sort", "start"), query.get("dir", "desc") != "asc"
        limit = _choice(query, "limit", PAGE_SIZES, 50)
        store_query = run_query(parse_filter(text), experiment, status, limit, query.get("token"))
        table = load_table(self.store, TableRequest(store_query, sort, descending))
        here = {k: v for k, v in query.multi_items() if k not in ("token", "page", "fragment")}
        return {
            "table": table,
            "experiments": [name for _id, name, _c in self.store.experiments()],
            "statuses": STATUSES,
            "form": {"filter": text, "experiment": experiment or "", "status": status or ""},
            "sort": sort,
            "descending": descending,
            "limit": limit,
            "sizes": PAGE_SIZES,
            "here": here,
            "request_query": set(query.keys()),
            "live": any(not run.status.is_terminal for run in table.runs),
        }

    # -- run page --------------------------------------------------------------------------

    def run(self, run_id: str, query: QueryParams) -> dict[str, Any]:
        record = self.store.get_run(run_id)
        x_axis = "time" if query.get("x") == "time" else "step"
        keys = sorted(record.metrics)
        overlay = [key for key in query.getlist("metric") if key in record.metrics]
        folder = self._run_folder(record.run_id)
        log = provenance.read_log(folder, -provenance.LOG_TAIL, provenance.LOG_TAIL)
        return {
            "run": record,
            "x_axis": x_axis,
            "charts": [(key, self._chart(record, [key], x_axis)) for key in keys[:MAX_CHARTS]],
            "uncharted": keys[MAX_CHARTS:],
            "overlay": overlay,
            "overlay_chart": self._chart(record, overlay, x_axis) if len(overlay) > 1 else None,
            "facts": provenance.provenance(record),
            "packages": provenance.locked_packages(record),
            "diff": provenance.read_diff(folder),
            "log": log,
            "artifacts": self._entries(record.run_id, ""),
            "is_workflow": record.tags.get("runner.kind") in ("workflow", "sweep"),
        }

    def _series(self, run_id: str, key: str, x_axis: str, label: str) -> charts.Series:
        """Every point of a short history; a long one's buckets, summarised in the store."""
        axis: Literal["step", "timestamp"] = "timestamp" if x_axis == "time" else "step"
        summary = self.store.metric_summary(run_id, key, axis, charts.BUCKETS)
        if summary.total <= charts.MAX_DRAWN:
            return charts.exact_series(label, self.store.metric_history(run_id, key), x_axis)
        return charts.bucket_series(label, summary, x_axis)

    def _chart(self, record: RunRecord, keys: list[str], x_axis: str) -> Any:
        series = [self._series(record.run_id, key, x_axis, key) for key in keys]
        title = f"{', '.join(keys)} by {x_axis}"
        return {"svg": charts.line_chart(series, x_axis, title), "legend": charts.legend(series)}

    def values(self, run_id: str, query: QueryParams) -> dict[str, Any]:
        """The exact logged values of one metric, a page of steps at a time."""
        record = self.store.get_run(run_id)
        key = query.get("key", "")
        if key not in record.metrics:
            raise BadRequest("key", f"run {record.run_id[:8]} logged no metric {key!r}")
        after = _int(query, "after_step", None, low=-(2**63), high=2**63 - 1)
        history = self.store.metric_history(
            record.run_id, key, after_step=after, limit=VALUES_PAGE + 1
        )
        points = list(history)
        more = len(points) > VALUES_PAGE
        points = _whole_steps(points[:VALUES_PAGE], points[VALUES_PAGE]) if more else points
        next_step = points[-1].step if more and points else None
        return {"run": record, "key": key, "points": points, "next_step": next_step}

    # -- logs and artifacts ----------------------------------------------------------------

    def log(self, run_id: str, query: QueryParams) -> dict[str, Any]:
        """The log from ``offset`` on and the run's status, for a page following a live run."""
        record = self.store.get_run(run_id)
        offset = _int(query, "offset", 0, low=0, high=2**62)
        chunk = provenance.read_log(self._run_folder(record.run_id), offset, provenance.LOG_CHUNK)
        return {
            "text": chunk.text,
            "offset": chunk.offset,
            "status": record.status.value,
            "done": record.status.is_terminal,
        }

    def artifacts(self, run_id: str, path: str) -> dict[str, Any]:
        record = self.store.get_run(run_id)
        relative = contained_artifact_path(path)
        entries = self._entries(record.run_id, relative)
        is_file = len(entries) == 1 and entries[0].path == relative and not entries[0].is_dir
        text = self._inline_text(record.run_id, relative) if is_file and relative else None
        return {
            "run": record,
            "path": relative,
            "parents": _parents(relative),
            "entries": [] if is_file else entries,
            "file": entries[0] if is_file else None,
            "text": text,
        }

    def download(self, run_id: str, path: str) -> Response:
        record = self.store.get_run(run_id)
        relative = contained_artifact_path(path)
        entries = self.files.list(record.run_id, relative)
        if not (len(entries) == 1 and entries[0].path == relative and not entries[0].is_dir):
            from runner.server.artifacts import ArtifactNotFound

            raise ArtifactNotFound(f"run {record.run_id} has no artifact file {relative!r}")
        source = self.files.open(record.run_id, relative)
        name = Path(relative).name.replace('"', "")
        headers = {
            # attachment + octet-stream: an HTML artifact is saved, never run in this origin
            "content-disposition": f'attachment; filename="{_ascii(name)}"',
            "content-length": str(entries[0].size),
            "x-content-type-options": "nosniff",
        }
        return StreamingResponse(
            _chunks(source), media_type="application/octet-stream", headers=headers
        )

    def _entries(self, run_id: str, relative: str) -> list[Any]:
        return list(self.files.list(run_id, relative))

    def _inline_text(self, run_id: str, relative: str) -> str | None:
        guessed, _ = mimetypes.guess_type(relative)
        with self.files.open(run_id, relative) as source:
            data = source.read(INLINE_TEXT + 1)
        if b"\x00" in data[:8192] and not (guessed or "").startswith("text/"):
            return None  # binary: offered as a download only
        try:
            text = data[:INLINE_TEXT].decode("utf-8")
        except UnicodeDecodeError:
            return None
        more = "\n[... shown up to 512 KiB ...]" if len(data) > INLINE_TEXT else ""
        return str(text) + more

    def _run_folder(self, run_id: str) -> Path:
        """Where the runner keeps a run's log and diff (beside its ``files/``)."""
        if isinstance(self.files, LocalArtifactStore):
            return self.files.root / run_id
        from runner.home import run_artifacts_dir

        return run_artifacts_dir(run_id)

    # -- compare ---------------------------------------------------------------------------

    def compare(self, run_ids: list[str], query: QueryParams) -> dict[str, Any]:
        if not 2 <= len(run_ids) <= MAX_COMPARED:
            raise BadRequest("run", f"choose 2 to {MAX_COMPARED} runs to compare")
        runs = [self.store.get_run(run_id) for run_id in dict.fromkeys(run_ids)]
        if len(runs) < 2:
            raise Conflict("choose two different runs to compare")
        x_axis = "time" if query.get("x") == "time" else "step"
        metric_keys = sorted({key for run in runs for key in run.metrics})
        return {
            "runs": runs,
            "x_axis": x_axis,
            "params": _rows([run.parameters for run in runs]),
            "environment": _rows([provenance.environment_facts(run) for run in runs]),
            "tags": _rows([run.tags for run in runs]),
            "metrics": [(key, [run.metrics.get(key) for run in runs]) for key in metric_keys],
            "charts": [(key, self._compare_chart(runs, key, x_axis)) for key in metric_keys][
                :MAX_CHARTS
            ],
            "ids": [run.run_id for run in runs],
        }

    def _compare_chart(self, runs: list[RunRecord], key: str, x_axis: str) -> Any:
        series = [
            self._series(run.run_id, key, x_axis, f"{run.run_name or run.run_id[:8]}")
            for run in runs
            if key in run.metrics
        ]
        return {
            "svg": charts.line_chart(series, x_axis, f"{key} by {x_axis}"),
            "legend": charts.legend(series),
        }

    # -- workflow --------------------------------------------------------------------------

    def workflow(self, run_id: str) -> dict[str, Any]:
        from runner.ui.workflow import workflow_graph

        record = self.store.get_run(run_id)
        children = getattr(self.store, "child_runs", None)
        if children is None:
            raise RunnerError("this store records no workflow steps")
        graph = workflow_graph(record, self._run_folder(record.run_id), children(record.run_id))
        return {"run": record, "graph": graph}


def _rows(mappings: list[Mapping[str, Any]]) -> list[tuple[str, list[str], bool]]:
    """(key, each run's value, whether they differ) for every key any run has."""
    keys = sorted({key for mapping in mappings for key in mapping})
    rows = []
    for key in keys:
        values = ["" if m.get(key) is None else str(m.get(key)) for m in mappings]
        rows.append((key, values, len(set(values)) > 1))
    return rows


def _whole_steps(points: list[MetricPoint], following: MetricPoint) -> list[MetricPoint]:
    """A full page, without its last step if that step goes on past the page: the next page
    starts after a step, so a step is never split between two pages (unless it fills one)."""
    last = points[-1].step
    if following.step != last:
        return points
    kept = [point for point in points if point.step != last]
    return kept or points


def _parents(relative: str) -> list[tuple[str, str]]:
    parts = relative.split("/") if relative else []
    return [(part, "/".join(parts[: i + 1])) for i, part in enumerate(parts)]


def _choice(query: QueryParams, name: str, allowed: tuple[int, ...], default: int) -> int:
    found: int = _int(query, name, default, low=1, high=max(allowed))
    if found not in allowed:
        raise BadRequest(name, f"must be one of {', '.join(map(str, allowed))}")
    return found


def _int(query: QueryParams, name: str, default: Any, *, low: int = 0, high: int) -> Any:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        found = int(text)
    except ValueError:
        raise BadRequest(name, f"must be an integer, not {text[:40]!r}") from None
    if not low <= found <= high:
        raise BadRequest(name, f"must be between {low} and {high}")
    return found


def _ascii(name: str) -> str:
    return name.encode("ascii", "replace").decode().replace('"', "")


def _chunks(source: Any) -> Any:
    with source:
        while chunk := source.read(1024 * 1024):
            yield chunk
