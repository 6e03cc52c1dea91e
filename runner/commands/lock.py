"""`runner lock DIR`: resolve the project's environment and write its lock next to MLproject."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("project_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--env-manager",
    help="The environment manager whose lock to write. Default: from the project "
    "(python_env → uv: runner.lock; conda → conda: conda-lock.yml).",
)
def lock(project_dir: Path, env_manager: str | None) -> None:
    """Pin PROJECT_DIR's environment (with hashes) into a lock file next to MLproject.

    python_env projects get runner.lock, conda projects conda-lock.yml (conda-lock's format).
    `runner run` then installs exactly that lock, as is, on every machine. Run it again
    after changing the env file (or the requirement files it includes) and commit the file.
    """
    from runner.envs.select import choose
    from runner.project.spec import load_spec

    spec = load_spec(project_dir.resolve())
    manager = choose(spec, env_manager)
    path = manager.commit_lock(
        spec, progress=lambda message: click.echo(f"runner: {message}", err=True)
    )
    click.echo(str(path))
