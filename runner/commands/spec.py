"""`runner spec schema`: print the JSON Schema of the MLproject format (or of a run record)."""

from __future__ import annotations

import click

_SCHEMAS = {"mlproject": "mlproject.schema.json", "run": "run.schema.json"}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def spec() -> None:
    """The formats runner reads and writes."""


@spec.command()
@click.argument("name", type=click.Choice(sorted(_SCHEMAS)), default="mlproject")
def schema(name: str) -> None:
    """Print the JSON Schema of NAME: the MLproject file (default) or a run record.

    Every key is described in it; editors with JSON Schema support can validate with it.
    """
    from runner.project.spec import schema_path

    click.echo(schema_path(_SCHEMAS[name]).read_text(encoding="utf-8"), nl=False)
