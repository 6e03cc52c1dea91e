"""`runner env`: list cached environments and garbage-collect them."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from runner.errors import UsageError

if TYPE_CHECKING:
    from runner.envs.inventory import EnvInfo


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def env() -> None:
    """Cached environments under RUNNER_HOME/envs, built once per lock and reused."""


@env.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the environments as a JSON list.")
def list_envs(as_json: bool) -> None:
    """List cached environments, most recently used first."""
    from runner.envs.inventory import list_envs as find_envs

    infos = find_envs()
    if as_json:
        click.echo(json.dumps([info.to_json() for info in infos], indent=2))
        return
    if not infos:
        click.echo("no cached environments", err=True)
        return
    rows = [("KEY", "MANAGER", "PYTHON", "SIZE", "LAST USED", "RUNS", "IN USE")]
    _table(rows + [_row(info) for info in infos])


def _row(info: EnvInfo) -> tuple[str, ...]:
    in_use = "yes" if info.in_use else ""
    size, used = human_size(info.size), ago(info.last_used)
    return (info.key[:12], info.manager, info.python, size, used, str(len(info.runs)), in_use)


@env.command("gc")
@click.option(
    "--older-than",
    default="30d",
    show_default=True,
    metavar="AGE",
    help="Remove environments not used for this long: 30d, 12h, 90m, 2w.",
)
@click.option("--all", "remove_all", is_flag=True, help="Remove every environment not in use.")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
def gc(older_than: str, remove_all: bool, dry_run: bool) -> None:
    """Remove unused environments and leftovers of interrupted builds.

    An environment a run is using is never removed.
    """
    from runner.envs.inventory import collect_garbage, parse_age

    try:
        age = parse_age(older_than)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    report = collect_garbage(older_than=age, remove_all=remove_all, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for info in report.removed:
        click.echo(
            f"{verb} {info.key[:12]}  {info.manager}  python {info.python}  "
            f"{human_size(info.size)}  last used {ago(info.last_used)}"
        )
    for info in report.in_use:
        click.echo(f"kept {info.key[:12]}: in use by a run")
    if report.garbage:
        click.echo(f"{verb} {len(report.garbage)} partial build(s)")
    click.echo(f"{verb} {len(report.removed)} environment(s), {human_size(report.freed)}", err=True)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def ago(timestamp: float, now: float | None = None) -> str:
    seconds = max(0.0, (time.time() if now is None else now) - timestamp)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return "just now"


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
