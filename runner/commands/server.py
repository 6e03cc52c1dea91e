"""`runner server`: the tracking server (REST API) over the store RUNNER_TRACKING_URI names."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=5005, show_default=True)
@click.option("--token", help="Require this token (Authorization: Bearer ...) on every request.")
@click.option(
    "--token-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Read the token from this file (it stays out of the process list).",
)
@click.option(
    "--artifact-root",
    help="Where run artifacts are kept: a folder or s3://bucket/prefix "
    "[default: RUNNER_HOME/artifacts].",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="A host name clients reach the server by (Host/Origin checks); repeat for more.",
)
def server(
    host: str,
    port: int,
    token: str | None,
    token_file: Path | None,
    artifact_root: str | None,
    allowed_hosts: tuple[str, ...],
) -> None:
    """Serve the REST API over the tracking store (RUNNER_TRACKING_URI, or RUNNER_HOME's SQLite).

    \b
    Examples:
      runner server                                   # 127.0.0.1:5005, no token needed
      runner server --host 0.0.0.0 --token-file tok   # other machines, token required
      RUNNER_TRACKING_URI=postgresql://user@db/runs runner server
    """
    from runner.server.serve import serve, server_settings

    settings = server_settings(
        host=host,
        token=token,
        token_file=token_file,
        artifact_root=artifact_root,
        allowed_hosts=allowed_hosts,
    )
    serve(settings, host, port)
