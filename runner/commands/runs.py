"""`runner runs`: list, show, logs and cancel recorded runs."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import click

from runner.display import printable, strict_json
from runner.status import RunStatus
from runner.store import RunPage, RunRecord


def _store() -> Any:
    from runner.execution.lifecycle import open_reconciled_store

    return open_reconciled_store()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def runs() -> None:
    """Inspect and control recorded runs. Run ids may be abbreviated to a unique prefix."""


LIST_LIMIT = 20
_SIZING_ROWS = 500  # rows that set the column widths of a listing


@runs.command("list")
@click.option("--experiment", help="Only runs of this experiment.")
@click.option(
    "--status",
    type=click.Choice([s.value for s in RunStatus], case_sensitive=False),
    help="Only runs with this status.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=None,
    help=f"At most this many runs, newest first [default: {LIST_LIMIT}].",
)
@click.option("--all", "all_runs", is_flag=True, help="Every matching run (read page by page).")
@click.option("--page-token", help="Continue after the runs already shown (the token printed).")
@click.option("--json", "as_json", is_flag=True, help="Print run records as a JSON list.")
def list_runs(
    experiment: str | None,
    status: str | None,
    limit: int | None,
    all_runs: bool,
    page_token: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first: the newest 20 unless --limit or --all says otherwise."""
    if all_runs and (limit is not None or page_token is not None):
        raise click.UsageError("--all lists every run; it takes no --limit or --page-token")
    store, wanted = _store(), status.upper() if status else None
    if all_runs:
        _print_runs(store.iter_runs(experiment=experiment, status=wanted), as_json)
        return
    limit = LIST_LIMIT if limit is None else limit
    page = store.list_runs(experiment, wanted, limit=limit, page_token=page_token)
    _print_runs(iter(page.runs), as_json)
    if page.more:
        click.echo(_more_line(page), err=True)


def _print_runs(records: Iterator[RunRecord], as_json: bool) -> None:
    if as_json:
        _print_json_list(records)
        return
    # Widths come from the first rows only, so that --all streams in bounded memory.
    first = [_table_row(record) for record in itertools.islice(records, _SIZING_ROWS)]
    if not first:
        click.echo("no runs recorded yet", err=True)
        return
    header = ("RUN ID", "STATUS", "EXPERIMENT", "ENTRY POINT", "STARTED", "NAME", "PARENT")
    widths = [max(len(row[i]) for row in [header, *first]) for i in range(len(header))]
    for row in itertools.chain([header], first, map(_table_row, records)):
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _table_row(record: RunRecord) -> tuple[str, ...]:
    started = record.start_time[:19].replace("T", " ")
    cells = (record.run_id[:12], record.status.value, record.experiment, record.entry_point)
    parent = (record.parent_run_id or "")[:12]  # a workflow step's or sweep child's parent run
    return tuple(map(printable, (*cells, started, record.run_name, parent)))


def _print_json_list(records: Iterator[RunRecord]) -> None:
    """What ``json.dumps(list, indent=2)`` prints, one record at a time."""
    separator = "["
    for record in records:
        text = strict_json(record.to_dict(), indent=2)
        click.echo(separator + "\n" + textwrap.indent(text, "  "), nl=False)
        separator = ","
    click.echo("[]" if separator == "[" else "\n]")


def _more_line(page: RunPage) -> str:
    """``... 180 more: --limit 200, --page-token ID or --all`` (how to see the rest)."""
    count = f"more than {page.more}" if page.capped else str(page.more)
    options = [] if page.capped else [f"--limit {len(page.runs) + page.more}"]
    options += [f"--page-token {page.next_token}"] if page.next_token else []
    return f"... {count} more: {', '.join([*options, '--all'])}".replace(", --all", " or --all")


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the full run record as JSON.")
def show(run_id: str, as_json: bool) -> None:
    """Show one run: status, parameters, source, environment, metrics."""
    from runner.execution.control import current_record

    record = current_record(_store(), run_id).to_dict()
    if as_json:
        click.echo(strict_json(record, indent=2))
        return
    for key, value in record.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for sub_key, sub_value in value.items():
                click.echo(f"  {printable(str(sub_key))}: {_short(sub_value)}")
        else:
            click.echo(f"{key}: {_short(value)}")


def _short(value: Any) -> str:
    """One value of ``runs show``: control characters escaped, and continuation lines indented
    deeper than any key, so no value can pass for another field."""
    lines = ("" if value is None else str(value)).splitlines() or [""]
    if len(lines) > 1 and sum(map(len, lines)) > 200:
        return printable(lines[0]) + " ..."
    return "\n      ".join(map(printable, lines))


@runs.command("logs")
@click.argument("run_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing output until the run ends.")
def logs(run_id: str, follow: bool) -> None:
    """Print the output (stdout and stderr) a run's entry point wrote."""
    from runner.execution.control import stream_logs

    note = stream_logs(_store(), run_id, follow=follow, write=_write_out)
    if note:
        click.echo(note, err=True)


def _write_out(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


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
    from runner.execution.control import cancel_run

    status = cancel_run(_store(), run_id, wait_seconds)
    click.echo(f"run {run_id}: {status.value}")
