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
    "--conda-exe",
    metavar="PATH|auto",
    expose_value=False,
    callback=lambda ctx, param, value: _use_conda_exe(value),
    help="For conda projects: solve and install with this conda, mamba or micromamba "
    "(auto: the first on PATH) instead of the built-in rattler. Same as RUNNER_CONDA_EXE.",
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
    metavar="JSON|FILE.json|FILE.yaml",
    help="Backend options as inline JSON, a .json file or a .yaml file.",
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
    help="Run in the background: print the run id once the backend has the run (its "
    "environment built, its job submitted); a run that fails before that exits 1.",
)
@click.option(
    "--recurse-submodules",
    is_flag=True,
    help="For git sources: also fetch the project's submodules (off by default, for safety).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the entry point's own output.")
@click.option(
    "--mlflow-api",
    is_flag=True,
    help="Serve MLflow's tracking API to the entry point for the run's duration, so mlflow.log_* "
    "calls land in this run (automatic when the run's environment has mlflow or mlflow-skinny).",
)
@click.option(
    "--sweep",
    type=click.Choice(["grid", "random"]),
    help="Run one child per combination of the -P values (a,b,c; for random also "
    "uniform(a,b), loguniform(a,b), choice(a,b)) under a parent run.",
)
@click.option("--samples", type=click.IntRange(min=1), help="--sweep random: how many children.")
@click.option("--seed", type=int, help="--sweep random: the random seed (reproducible draws).")
@click.option("--max-parallel", type=click.IntRange(min=1), default=1, help="--sweep: at once.")
@click.option("--metric", help="--sweep: sort the summary by this metric; the best is recorded.")
@click.option("--maximize", is_flag=True, help="--sweep: a higher --metric is better.")
@click.option("--json", "as_json", is_flag=True, help="--sweep: JSON events and summary.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Validate, then print what the backend would submit (kubernetes: the manifests); "
    "nothing is recorded, built, pushed or run.",
)
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
    mlflow_api: bool,
    dry_run: bool,
    python_match: str,
    sweep: str | None = None,
    samples: int | None = None,
    seed: int | None = None,
    max_parallel: int = 1,
    metric: str | None = None,
    maximize: bool = False,
    as_json: bool = False,
) -> int:
    """Run ENTRY_POINT of the project at URI and record the run.

    URI is a folder, a git URL (https, ssh, git@host:org/repo, file://) or a .zip, with an
    optional #subdirectory. Path parameters are resolved against the current directory, as
    in MLflow. Parameters are validated against their declared types before anything runs.

    Exit status: 0 if the run FINISHED (with --detach: once it is launched), 1 if it FAILED or
    was KILLED or the runner refused it, 2 for a usage error, 130 on Ctrl-C.
    """
    from runner.execution.lifecycle import run_from_cli

    sweep_only = {
        "--samples": samples is not None,
        "--seed": seed is not None,
        "--metric": metric is not None,
        "--maximize": maximize,
        "--json": as_json,
        "--max-parallel": max_parallel != 1,
    }
    if sweep is None and (given := [name for name, value in sweep_only.items() if value]):
        raise click.UsageError(f"{given[0]} is an option of --sweep grid|random")
    not_for_sweeps = {
        "--detach": detach,
        "--dry-run": dry_run,
        "--run-name": run_name is not None,
        "--recurse-submodules": recurse_submodules,
        "--python-match": python_match != "exact",
        "--mlflow-api": mlflow_api,
    }
    if sweep is not None and (given := [name for name, value in not_for_sweeps.items() if value]):
        raise click.UsageError(f"{given[0]} cannot be combined with --sweep")
    if sweep is not None:
        from runner.workflow.sweeprun import SweepOptions, run_sweep_from_cli

        return run_sweep_from_cli(
            uri=uri,
            entry_point=entry_point,
            params=params,
            version=version,
            env_manager=env_manager,
            backend=backend,
            backend_config=backend_config,
            docker_args=docker_args,
            experiment=experiment_name,
            options=SweepOptions(sweep, samples, seed, max_parallel, metric, maximize, as_json),
        )
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
        mlflow_api=mlflow_api,
        dry_run=dry_run,
        python_match=python_match,
    )


def _use_conda_exe(value: str | None) -> None:
    """The conda manager reads RUNNER_CONDA_EXE (also in a detached supervisor)."""
    if value:
        import os

        os.environ["RUNNER_CONDA_EXE"] = value
