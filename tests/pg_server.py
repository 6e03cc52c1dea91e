"""A throwaway PostgreSQL server for tests: initdb in a temp dir, 127.0.0.1, trust auth."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ServerUnavailable(Exception):
    """No PostgreSQL server binaries here (install Debian's `postgresql` package)."""


def _bindir() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not candidates:
        raise ServerUnavailable("PostgreSQL server binaries (initdb, pg_ctl) not found")
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(argv: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: use the packaged `postgres` account
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _run(argv: list[str]) -> None:
    result = subprocess.run(_as_server_user(argv), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise ServerUnavailable(f"{argv[0]} failed: {result.stderr.strip()[-500:]}")


@contextmanager
def postgres_server(base: Path) -> Iterator[str]:
    """Start a server under ``base``; yields a SQLAlchemy URL of its `postgres` database."""
    bindir = _bindir()
    data, sockets = base / "data", base / "sock"
    sockets.mkdir(parents=True)
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    _run([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "runner", "--no-sync"])
    options = f"-h 127.0.0.1 -p {port} -k {sockets} -F"
    log = base / "server.log"  # not a pipe: the server would hold our stdout open forever
    start = [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w"]
    _run([*start, "-t", "60", "start"])
    try:
        yield f"postgresql+psycopg://runner@127.0.0.1:{port}/postgres"
    finally:
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
