"""A throwaway image registry: Debian's ``docker-registry`` on 127.0.0.1 with the tests' config.

The packaged config turns on htpasswd auth and listens on every interface, so it is never used.
The engine treats 127.0.0.0/8 as an insecure registry: plain HTTP needs no daemon setting.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BINARY = "docker-registry"


class RegistryUnavailable(Exception):
    """No registry binary here (install Debian's ``docker-registry`` package)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _config(root: Path, port: int) -> str:
    return (
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage:\n  filesystem: {{rootdirectory: {root}}}\n  delete: {{enabled: true}}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )


def _ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RegistryUnavailable(f"{BINARY} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/v2/", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RegistryUnavailable(f"{BINARY} did not answer on {url} within {timeout} s")


@contextmanager
def local_registry(workdir: Path) -> Iterator[str]:
    """Yield the registry's host:port (``127.0.0.1:NNNN``) while it runs."""
    binary = shutil.which(BINARY)
    if binary is None:
        raise RegistryUnavailable(f"{BINARY} not found: install the docker-registry apt package")
    port = _free_port()
    config = workdir / "registry.yml"
    config.write_text(_config(workdir / "storage", port))
    proc = subprocess.Popen(
        [binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _ready(f"http://127.0.0.1:{port}", proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def has_manifest(registry: str, repository: str, reference: str) -> bool:
    """Whether the registry holds ``repository:reference`` (a tag or a digest)."""
    request = urllib.request.Request(
        f"http://{registry}/v2/{repository}/manifests/{reference}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False
