"""`runner workflow`: run a workflow file, show a workflow run's steps, resume one."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from runner.execution.plan import DEFAULT_EXPERIMENT

if TYPE_CHECKING:
    from runner.workflow.engine import Outcome


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def workflow() -> None:
    """Run multi-step workflows: DAGs of project runs with a step cache."""


def _common(command: Any) -> Any:
    options = [
        click.option(
            "--max-parallel",
            type=click.IntRange(min=1),
            help="Steps at once (default: the file's max_parallel, else 1).",
        ),
        click.option(
            "--on-failure",
            type=click.Choice(["stop", "continue"]),
            help="After a failed step: start no more (stop), or go on with the steps "
            "that do not need it (continue). Default: the file's on_failure, else stop.",
        ),
        click.option("--json", "as_json", is_flag=True, help="JSON events and a JSON summary."),
        click.option("-q", "--quiet", is_flag=True, help="Only the summary line."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@workflow.command("run")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "-P",
    "--param-list",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A workflow parameter (repeatable), checked against its declared type.",
)
@click.option("-b", "--backend", help="Backend for steps that do not name one.")
@click.option("-c", "--backend-config", metavar="JSON|FILE.json", help="Their backend options.")
@click.option("--env-manager", help="Environment manager for steps that do not name one.")
@click.option("--no-cache", is_flag=True, help="Run every step, reusing no earlier run.")
@click.option("--refresh", multiple=True, metavar="STEP", help="Run STEP even if cached.")
@click.option(
    "--experiment-name",
    default=DEFAULT_EXPERIMENT,
    show_default=True,
    help="Experiment to record the workflow run and its steps into.",
)
@_common
def run(
    file: str,
    params: tuple[str, ...],
    backend: str | None,
    backend_config: str | None,
    env_manager: str | None,
    no_cache: bool,
    refresh: tuple[str, ...],
    experiment_name: str,
    max_parallel: int | None,
    on_failure: str | None,
    as_json: bool,
    quiet: bool,
) -> int:
    """Run the steps of the workflow FILE in DAG order under one workflow run.

    A step whose cache key (source, entry point, parameters, environment, backend, the keys
    of its needs) matches an earlier FINISHED run reuses it. Exit status: 0 if every step
    finished (or was cached), 1 otherwise, 130 on Ctrl-C.
    """
    from pathlib import Path

    from runner.execution.plan import parse_backend_config
    from runner.project.params import parse_param_args
    from runner.workflow.engine import Settings, run_workflow
    from runner.workflow.spec import load_workflow

    spec = load_workflow(Path(file))
    unknown = sorted(set(refresh) - set(spec.steps))
    if unknown:
        raise click.UsageError(f"--refresh names unknown step(s): {', '.join(unknown)}")
    settings = Settings(
        parameters=parse_param_args(params),
        max_parallel=max_parallel,
        on_failure=on_failure,
        use_cache=not no_cache,
        refresh=refresh,
        backend=backend,
        backend_config=parse_backend_config(backend_config),
        env_manager=env_manager,
        experiment=experiment_name,
        file=file,
    )
    return _report(lambda reporter: run_workflow(spec, settings, reporter), as_json, quiet)


@workflow.command("resume")
@click.argument("run_id")
@_common
def resume(
    run_id: str, max_parallel: int | None, on_failure: str | None, as_json: bool, quiet: bool
) -> int:
    """Run again only the steps of workflow run RUN_ID that did not finish (after a crash,
    a kill or ^C); steps that finished are reused from it, steps still running awaited."""
    import dataclasses

    from runner.errors import UsageError
    from runner.execution.lifecycle import open_reconciled_store
    from runner.workflow.engine import RESUMED_FROM_TAG, finished_steps, load_recorded, run_workflow

    store = open_reconciled_store()
    try:
        record, spec, settings = load_recorded(run_id, store)
        if not record.status.is_terminal:
            raise UsageError(
                f"workflow run {record.run_id} is still {record.status.value}",
                hint=f"wait for it, or stop it first: runner runs cancel {record.run_id}",
            )
        done = finished_steps(store, record.run_id)
    finally:
        store.close()
    changes: dict[str, Any] = {"max_parallel": max_parallel, "on_failure": on_failure}
    settings = dataclasses.replace(settings, **{k: v for k, v in changes.items() if v})
    tags = {RESUMED_FROM_TAG: record.run_id}

    def start(reporter: Any) -> Outcome:
        return run_workflow(spec, settings, reporter, reuse=done, tags=tags)

    if settings.kind == "sweep":  # ends with the sweep's table and best run, as it would have
        from runner.workflow.sweeprun import recorded_options, report_sweep

        return report_sweep(start, recorded_options(settings, as_json))
    return _report(start, as_json, quiet)


@workflow.command("status")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the steps as JSON.")
def status(run_id: str, as_json: bool) -> None:
    """Show the steps of workflow run RUN_ID: status, run, cached from, attempts."""
    from runner.display import printable, strict_json
    from runner.execution.lifecycle import open_reconciled_store
    from runner.workflow.engine import recorded_dag, step_table

    store = open_reconciled_store()
    try:
        record, dag = recorded_dag(run_id, store)
        table = step_table(store, record.run_id, dag["order"])
    finally:
        store.close()
    if as_json:
        data = {"run_id": record.run_id, "status": record.status.value, "steps": table}
        click.echo(strict_json(data))
        return
    click.echo(
        printable(f"{record.entry_point} {dag['name']} ({record.run_id}): {record.status.value}")
    )
    for name, row in table.items():
        extra = f" cached from {row['cached_from']}" if row.get("cached_from") else ""
        run = f" run {row['run_id']}" if row.get("run_id") else ""
        click.echo(printable(f"  {name}: {row['status']}{run}{extra}"))


def _report(start: Any, as_json: bool, quiet: bool) -> int:
    from runner.console import say
    from runner.execution.interrupts import Cancelled
    from runner.workflow.progress import reporter_for

    try:
        outcome: Outcome = start(reporter_for(json_lines=as_json, quiet=quiet))
    except KeyboardInterrupt:
        say("workflow KILLED (interrupted); its running steps were cancelled")
        return 130
    except Cancelled:  # SIGTERM, e.g. runner runs cancel <workflow-run>
        say("workflow KILLED (terminated); its running steps were cancelled")
        return 1
    if as_json:
        print(json.dumps(outcome.summary(), separators=(",", ":")), flush=True)
    else:
        detail = f" ({outcome.reason})" if outcome.reason else ""
        cached = sum(1 for s in outcome.steps.values() if s.status == "cached")
        say(
            f"workflow run {outcome.run_id} {outcome.status.value} in {outcome.seconds:.2f}s: "
            f"{len(outcome.steps)} steps, {cached} cached{detail}"
        )
    sys.stdout.flush()
    return 0 if outcome.status.value == "FINISHED" else 1
