"""`runner runs`: list, show, logs and cancel recorded runs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from typing import Any

import click

from runner.errors import RunnerError
from runner.status import RunStatus


def _store() -> Any:
    from runner.execution.lifecycle import open_reconciled_store

    return open_reconciled_store()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def runs() -> None:
    """Inspect and control recorded runs. Run ids may be abbreviated to a unique prefix."""


@runs.command("list")
@click.option("--experiment", help="Only runs of this experiment.")
@click.option(
    "--status",
    type=click.Choice([s.value for s in RunStatus], case_sensitive=False),
    help="Only runs with this status.",
)
@click.option("--limit", type=int, default=None, help="At most this many runs (newest first).")
@click.option("--json", "as_json", is_flag=True, help="Print run records as a JSON list.")
def list_runs(experiment: str | None, status: str | None, limit: int | None, as_json: bool) -> None:
    """List runs, newest first."""
    records = _store().list_runs(
        experiment=experiment, status=status.upper() if status else None, limit=limit
    )
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    if not records:
        click.echo("no runs recorded yet", err=True)
        return
    rows = [("RUN ID", "STATUS", "EXPERIMENT", "ENTRY POINT", "STARTED", "NAME")]
    rows += [
        (
            r["run_id"][:12],
            r["status"],
            r["experiment"],
            r["entry_point"],
            (r["start_time"] or "")[:19].replace("T", " "),
            r["run_name"] or "",
        )
        for r in records
    ]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        )


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the full run record as JSON.")
def show(run_id: str, as_json: bool) -> None:
    """Show one run: status, parameters, source, environment, metrics."""
    record = _store().get_run(run_id)
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    for key, value in record.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for sub_key, sub_value in value.items():
                click.echo(f"  {sub_key}: {_short(sub_value)}")
        else:
            click.echo(f"{key}: {_short(value)}")


def _short(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 200 or "\n" not in text else text.splitlines()[0] + " ..."


@runs.command("logs")
@click.argument("run_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing output until the run ends.")
def logs(run_id: str, follow: bool) -> None:
    """Print the output (stdout and stderr) a run's entry point wrote."""
    from runner.execution.orchestrator import LOG_FILE
    from runner.home import run_artifacts_dir

    store = _store()
    full_id = store.get_run(run_id)["run_id"]
    path = run_artifacts_dir(full_id) / LOG_FILE
    offset = _print_from(path, 0)
    while follow and not RunStatus(store.get_run(full_id)["status"]).is_terminal:
        time.sleep(0.2)
        offset = _print_from(path, offset)
    if follow:
        _print_from(path, offset)


def _print_from(path: Any, offset: int) -> int:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return offset + len(data)


@runs.command("cancel")
@click.argument("run_id")
@click.option(
    "--wait",
    "wait_seconds",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for the run to end.",
)
def cancel(run_id: str, wait_seconds: float) -> None:
    """Stop a run: its entry point is terminated and the run ends KILLED."""
    status = cancel_run(run_id, wait_seconds)
    click.echo(f"run {run_id}: {status.value}")


def cancel_run(run_id: str, wait_seconds: float = 30.0) -> RunStatus:
    """Signal the run's runner process (which cancels the backend); returns the final status."""
    store = _store()
    record = store.get_run(run_id)
    full_id = record["run_id"]
    if RunStatus(record["status"]).is_terminal:
        return RunStatus(record["status"])
    live = {run.run_id: run for run in store.live_runs()}.get(full_id)
    if live is None or live.runner_pid is None:
        store.finish_run(full_id, RunStatus.KILLED, None, "cancelled before it started")
        return RunStatus.KILLED
    if live.runner_host != socket.gethostname():
        raise RunnerError(
            f"run {full_id} is executed by a runner on host {live.runner_host}",
            hint="cancel it from that host",
        )
    _terminate(live.runner_pid)
    return _await_end(store, full_id, wait_seconds)


def _terminate(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)


def _await_end(store: Any, run_id: str, wait_seconds: float) -> RunStatus:
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        status = RunStatus(store.get_run(run_id)["status"])
        if status.is_terminal:
            return status
        time.sleep(0.1)
    return RunStatus(store.get_run(run_id)["status"])
