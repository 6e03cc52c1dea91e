"""`runner run`: validate, record, execute (or detach), report."""

from __future__ import annotations

import click

from runner.execution.plan import DEFAULT_EXPERIMENT


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("uri")
@click.option(
    "-e",
    "--entry-point",
    default="main",
    show_default=True,
    help="Entry point name from the MLproject, or a script: train.py, run.sh.",
)
@click.option(
    "-P",
    "--param-list",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter (repeatable). Undeclared names are passed as --NAME VALUE.",
)
@click.option("-v", "--version", help="Git branch, tag or commit to run (git sources only).")
@click.option(
    "--env-manager",
    help="An environment manager: local, uv, virtualenv (= uv), conda, or one registered "
    "under 'runner.env_managers'. Default: from the project "
    "(python_env → uv, conda → conda, docker_env → docker, none → local).",
)
@click.option(
    "-b",
    "--backend",
    default=None,
    help="Where to run: local, docker, or another backend registered under 'runner.backends'. "
    "Default: the environment's own backend (docker for docker_env projects), else local.",
)
@click.option(
    "-c",
    "--backend-config",
    metavar="JSON|FILE.json",
    help="Backend options as inline JSON or a .json file.",
)
@click.option(
    "-A",
    "--docker-args",
    multiple=True,
    metavar="NAME[=VALUE]",
    help="Docker run options, MLflow style: -A memory=1g -A gpus=all -A t.",
)
@click.option(
    "--experiment-name",
    default=DEFAULT_EXPERIMENT,
    show_default=True,
    envvar="RUNNER_EXPERIMENT_NAME",
    help="Experiment to record into (created if new).",
)
@click.option("--run-name", help="A name for the run (default: generated).")
@click.option(
    "--detach",
    is_flag=True,
    help="Validate and record, then run in the background and print the run id.",
)
@click.option(
    "--recurse-submodules",
    is_flag=True,
    help="For git sources: also fetch the project's submodules (off by default, for safety).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the entry point's own output.")
@click.option(
    "--python-match",
    type=click.Choice(["exact", "minor"]),
    default="exact",
    show_default=True,
    help="How the env file's python pin picks an installed interpreter: exact, or minor (the "
    "newest installed patch release of the pinned minor version; both are recorded).",
)
def run(
    uri: str,
    entry_point: str,
    params: tuple[str, ...],
    version: str | None,
    env_manager: str | None,
    backend: str | None,
    backend_config: str | None,
    docker_args: tuple[str, ...],
    experiment_name: str,
    run_name: str | None,
    detach: bool,
    recurse_submodules: bool,
    quiet: bool,
    python_match: str,
) -> int:
    """Run ENTRY_POINT of the project at URI and record the run.

    URI is a folder, a git URL (https, ssh, git@host:org/repo, file://) or a .zip, with an
    optional #subdirectory. Path parameters are resolved against the current directory, as
    in MLflow. Parameters are validated against their declared types before anything runs.

    Exit status: 0 if the run FINISHED, 1 if it FAILED or was KILLED or the runner refused
    it, 2 for a usage error, 130 on Ctrl-C.
    """
    from runner.execution.lifecycle import run_from_cli

    return run_from_cli(
        uri=uri,
        entry_point=entry_point,
        params=params,
        version=version,
        env_manager=env_manager,
        backend=backend,
        backend_config=backend_config,
        docker_args=docker_args,
        experiment=experiment_name,
        run_name=run_name,
        detach=detach,
        submodules=recurse_submodules,
        quiet=quiet,
        python_match=python_match,
    )
