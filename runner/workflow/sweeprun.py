"""`runner run ... --sweep grid|random`: the children under a parent run, then the summary."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.console import say
from runner.display import printable

if TYPE_CHECKING:
    from runner.workflow.engine import Outcome, Settings
    from runner.workflow.progress import Reporter


@dataclass(frozen=True)
class SweepOptions:
    mode: str  # grid or random (resume: as recorded)
    samples: int | None = None
    seed: int | None = None
    max_parallel: int = 1
    metric: str | None = None
    maximize: bool = False
    as_json: bool = False


def run_sweep_from_cli(
    *,
    uri: str,
    entry_point: str,
    params: Sequence[str],
    version: str | None,
    env_manager: str | None,
    backend: str | None,
    backend_config: str | None,
    docker_args: Sequence[str],
    experiment: str,
    options: SweepOptions,
) -> int:
    """Exit status 0 when every child FINISHED (or was cached), else 1; 130 on ^C."""
    from runner.execution.plan import parse_backend_config, parse_docker_args
    from runner.project.params import parse_param_args
    from runner.workflow.engine import Settings, run_workflow
    from runner.workflow.sweep import combinations, parse_axis, sweep_spec

    given = parse_param_args(params)
    axes = [parse_axis(name, text) for name, text in given.items()]
    points = combinations(axes, options.mode, options.samples, options.seed)
    spec = sweep_spec(uri, entry_point, {}, points, version=version, cwd=Path.cwd())
    config = parse_backend_config(backend_config)
    if docker_args:
        config["docker_args"] = parse_docker_args(docker_args)
    settings = Settings(
        max_parallel=options.max_parallel,
        on_failure="continue",
        backend=backend,
        backend_config=config,
        env_manager=env_manager,
        experiment=experiment,
        kind="sweep",
        sweep={"metric": options.metric, "maximize": options.maximize},
    )
    return report_sweep(lambda reporter: run_workflow(spec, settings, reporter), options)


def recorded_options(settings: Settings, as_json: bool) -> SweepOptions:
    """The summary options a sweep run was started with (for its resume)."""
    summary = settings.sweep
    return SweepOptions(
        mode="resume",
        max_parallel=settings.max_parallel or 1,
        metric=summary.get("metric"),
        maximize=bool(summary.get("maximize")),
        as_json=as_json,
    )


def report_sweep(start: Callable[[Reporter], Outcome], options: SweepOptions) -> int:
    """Run the sweep (``start``), then its summary: exit status 0 when every child FINISHED
    (or was cached), else 1; 130 on ^C."""
    from runner.execution.interrupts import Cancelled
    from runner.workflow.progress import reporter_for

    try:
        outcome = start(reporter_for(json_lines=options.as_json, quiet=False))
    except KeyboardInterrupt:
        say("sweep KILLED (interrupted); its running children were cancelled")
        return 130
    except Cancelled:  # SIGTERM, e.g. runner runs cancel <sweep-run>
        say("sweep KILLED (terminated); its running children were cancelled")
        return 1
    rows = _summarise(outcome, options)
    if options.as_json:
        print(json.dumps({**outcome.summary(), "summary": rows}, separators=(",", ":")))
    else:
        _print_table(rows, options.metric)
        say(f"sweep run {outcome.run_id} {outcome.status.value}: {len(rows)} children")
    return 0 if outcome.status.value == "FINISHED" else 1


def _summarise(outcome: Any, options: SweepOptions) -> list[dict[str, object]]:
    from runner.store.open import open_store
    from runner.workflow.sweep import record_best, summary_rows

    store = open_store()
    try:
        rows = summary_rows(store, outcome, options.metric, options.maximize)
        if options.metric:
            record_best(store, outcome.run_id, rows, options.metric)
    finally:
        store.close()
    return rows


def _print_table(rows: Sequence[dict[str, object]], metric: str | None) -> None:
    width = max((len(str(r["step"])) for r in rows), default=4)
    header = f"{'CHILD':<{width}}  {'STATUS':<9} {'RUN ID':<12}" + (f"  {metric}" if metric else "")
    lines = [header]
    for row in rows:
        run = str(row["run_id"] or "")[:12]
        value = "" if row["metric"] is None else f"  {row['metric']:.6g}"
        lines.append(
            f"{row['step']!s:<{width}}  {row['status']!s:<9} {run:<12}" + (value if metric else "")
        )
    if metric and rows and rows[0]["metric"] is not None:
        lines.append(f"best: run {rows[0]['run_id']} ({metric} = {rows[0]['metric']:.6g})")
    print("\n".join(printable(line) for line in lines), flush=True)
