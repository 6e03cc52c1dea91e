"""Command-line entry point: parse, dispatch to runner/commands/, and the one error boundary."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from runner import __version__
from runner.display import printable
from runner.errors import RunnerError, UsageError

# name → "module:attribute"; modules load only when their command runs, to keep start-up fast
COMMANDS = {
    "run": ("runner.commands.run:run", "Run an entry point of a project (folder, git URL or zip)."),
    "runs": ("runner.commands.runs:runs", "List, show, follow and cancel recorded runs."),
    "env": ("runner.commands.env:env", "List and garbage-collect cached environments."),
    "lock": ("runner.commands.lock:lock", "Resolve a project's environment to a lock file."),
    "server": ("runner.commands.server:server", "Serve the tracking store's REST API."),
    "workflow": ("runner.commands.workflow:workflow", "Run, resume and inspect workflows."),
    "schedule": (
        "runner.commands.schedule:schedule",
        "Create, list and delete recurring runs (Kubernetes CronJobs).",
    ),
    "spec": ("runner.commands.spec:spec", "Print the MLproject format (its JSON Schema)."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[cmd_name][0].split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runner")
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Run MLflow-format ML projects reproducibly and record every run.

    \b
    Examples:
      runner run sample_projects/hello -P name=world
      runner run https://host/org/repo.git#subdir -v v1.2 -e train -P alpha=0.5
      runner runs list
      runner runs show <run-id> --json
    """
    ctx.obj = {"debug": debug}


def main(argv: list[str] | None = None) -> int:
    """The error boundary: runner errors → one message (exit 1), usage → 2, ^C → 130."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        result = cli.main(args=argv, prog_name="runner", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:  # click's own form of ^C (while it parses or prompts)
        click.echo("runner: interrupted", err=True)
        return 130
    except UsageError as exc:
        click.echo(printable(exc.render(), one_line=False), err=True)
        return 2
    except RunnerError as exc:
        click.echo(printable(exc.render(), one_line=False), err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("runner: interrupted", err=True)
        return 130
    except Exception as exc:
        return _unexpected(exc, debug)
    return int(result or 0)


def _unexpected(exc: Exception, debug: bool) -> int:
    import traceback

    log = _log_traceback()
    if debug:
        traceback.print_exc()
    where = f"the traceback is in {log}" if log else "run again with --debug to see the traceback"
    click.echo(f"error: unexpected error: {exc!r}\nhint: {where}", err=True)
    return 1


def _log_traceback() -> Path | None:
    """Append the traceback to RUNNER_HOME/logs/runner.log; None when that cannot be written."""
    import traceback

    from runner.home import runner_home

    try:  # a broken home must not turn one unexpected error into a second traceback
        log = runner_home() / "logs" / "runner.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as f:
            f.write(f"runner {__version__}, python {sys.version.split()[0]}\n")
            f.write(traceback.format_exc() + "\n")
    except (OSError, RunnerError):
        return None
    return log
