"""`runner lock DIR`: resolve the project's Python env and write runner.lock next to MLproject."""

from __future__ import annotations

from pathlib import Path

import click

from runner.errors import SpecError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("project_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def lock(project_dir: Path) -> None:
    """Pin PROJECT_DIR's Python environment (with hashes) into PROJECT_DIR/runner.lock.

    `runner run` then installs exactly that lock, as is, on every machine. Run it again
    after changing python_env.yaml (or the requirement files it includes) and commit the file.
    """
    from runner.envs.python.interpreters import find_interpreter
    from runner.envs.python.lock import write_lock
    from runner.envs.python.pyspec import read_python_spec
    from runner.envs.python.resolve import resolve_lock
    from runner.project.spec import load_spec

    spec = load_spec(project_dir.resolve())
    if spec.env.kind not in ("python_env", "conda_env"):
        raise SpecError(
            f"nothing to lock: {project_dir} has no python_env or conda_env file",
            hint="add python_env: python_env.yaml to MLproject",
        )
    pyspec = read_python_spec(spec)
    for warning in pyspec.warnings:
        click.echo(f"warning: {warning}", err=True)
    resolved = resolve_lock(
        pyspec,
        find_interpreter(pyspec.python),
        progress=lambda message: click.echo(f"runner: {message}", err=True),
    )
    click.echo(str(write_lock(spec.root, resolved)))
