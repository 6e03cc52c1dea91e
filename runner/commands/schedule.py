"""`runner schedule`: create, list and delete recurring runs (Kubernetes CronJobs)."""

from __future__ import annotations

import os

import click

from runner.execution.plan import DEFAULT_EXPERIMENT

_CONFIG_HELP = "Backend options: inline JSON, a .json or a .yaml file (as for runner run)."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def schedule() -> None:
    """Recurring runs on a cluster: each firing is a recorded run of the pinned commit."""


@schedule.command("create")
@click.argument("name")
@click.option("--cron", required=True, help="When: five cron fields, e.g. '0 3 * * *'.")
@click.argument("uri")
@click.option("-e", "--entry-point", default="main", show_default=True)
@click.option("-P", "--param-list", "params", multiple=True, metavar="NAME=VALUE")
@click.option("-v", "--version", help="Git branch, tag or commit (pinned to its commit).")
@click.option("--env-manager", help="As for runner run.")
@click.option("-b", "--backend", default="kubernetes", show_default=True)
@click.option("-c", "--backend-config", metavar="JSON|FILE.json|FILE.yaml", help=_CONFIG_HELP)
@click.option(
    "--experiment-name",
    default=DEFAULT_EXPERIMENT,
    show_default=True,
    envvar="RUNNER_EXPERIMENT_NAME",
)
def create(
    name: str,
    cron: str,
    uri: str,
    entry_point: str,
    params: tuple[str, ...],
    version: str | None,
    env_manager: str | None,
    backend: str,
    backend_config: str | None,
    experiment_name: str,
) -> None:
    """Schedule ENTRY_POINT of the project at URI as NAME; the image is built and pushed now."""
    from runner.execution.plan import RunRequest, parse_backend_config
    from runner.execution.schedule import create_schedule
    from runner.progressview import progress_view
    from runner.project.params import parse_param_args

    request = RunRequest(
        uri=uri,
        entry_point=entry_point,
        parameters=parse_param_args(params),
        version=version,
        env_manager=env_manager,
        backend=backend,
        backend_config=parse_backend_config(backend_config),
        experiment=experiment_name,
        parent_run_id=os.environ.get("RUNNER_RUN_ID"),
    )
    click.echo(create_schedule(name, cron, request, progress_view(False)))


@schedule.command("list")
@click.option("-b", "--backend", default="kubernetes", show_default=True)
@click.option("-c", "--backend-config", metavar="JSON|FILE.json|FILE.yaml", help=_CONFIG_HELP)
def list_(backend: str, backend_config: str | None) -> None:
    """The schedules in the configured cluster and namespace."""
    from runner.display import printable
    from runner.execution.plan import parse_backend_config
    from runner.execution.schedule import list_schedules

    rows = list_schedules(backend, parse_backend_config(backend_config))
    click.echo(f"{'NAME':<24} {'CRON':<16} {'LAST RUN':<26} SUSPENDED")
    for row in rows:
        line = (
            f"{row['name']:<24} {row['cron']:<16} {row['last_run'] or '-':<26} {row['suspended']}"
        )
        click.echo(printable(line))


@schedule.command("delete")
@click.argument("name")
@click.option("-b", "--backend", default="kubernetes", show_default=True)
@click.option("-c", "--backend-config", metavar="JSON|FILE.json|FILE.yaml", help=_CONFIG_HELP)
def delete(name: str, backend: str, backend_config: str | None) -> None:
    """Delete schedule NAME; runs it already started stay recorded."""
    from runner.execution.plan import parse_backend_config
    from runner.execution.schedule import delete_schedule

    delete_schedule(backend, parse_backend_config(backend_config), name)
    click.echo(f"schedule {name} deleted")
