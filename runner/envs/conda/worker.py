"""The rattler calls (solve, install) in a child: ``python -m runner.envs.conda.worker``.

A child of its own because py-rattler's runtime threads outlive its calls and can crash the
interpreter as it shuts down (seen with py-rattler 0.28: a segfault or "PyGILState_Release"
at exit in about one process in twenty). The child reads JSON requests, one a line, on stdin,
answers each with one JSON line on stdout, and leaves with ``os._exit`` when stdin closes, so
no runner command ever shuts down with rattler loaded. One child serves a command's solve and
install. It dies with its parent (a killed build leaves no installer behind).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import asdict
from typing import Any, cast

from runner.envs.conda.channels import redact, with_credentials
from runner.envs.conda.lockdata import CondaPackage


def solve(request: dict[str, Any]) -> dict[str, Any]:
    import rattler

    async def run() -> list[Any]:
        config = rattler.ChannelConfig(**request["alias"], root_dir=request["root"])
        records: list[Any] = await rattler.solve(
            sources=[rattler.Channel(url, config) for url in request["channels"]],
            specs=request["specs"],
            gateway=rattler.Gateway(cache_dir=request["repodata_cache"]),
            virtual_packages=rattler.VirtualPackage.detect(),
            channel_priority=rattler.ChannelPriority.Strict,
        )
        return records

    return {"packages": [asdict(conda_package(record)) for record in asyncio.run(run())]}


def conda_package(record: Any) -> CondaPackage:
    """A rattler ``RepoDataRecord`` as a lock entry (URL without credentials)."""
    if record.sha256 is None or record.md5 is None:
        raise LockError(f"the channel gives no sha256 and md5 for {record.file_name}")
    noarch = record.noarch
    return CondaPackage(
        name=record.name.normalized,
        version=str(record.version),
        build=str(record.build),
        build_number=int(record.build_number),
        subdir=str(record.subdir),
        noarch="python" if noarch.python else "generic" if noarch.generic else None,
        depends=tuple(record.depends),
        url=redact(record.url),
        md5=record.md5.hex(),
        sha256=record.sha256.hex(),
    )


def install(request: dict[str, Any]) -> dict[str, Any]:
    import rattler

    secrets = request["secrets"]
    packages = [CondaPackage(**{**p, "depends": tuple(p["depends"])}) for p in request["packages"]]
    for package in packages:
        _verify_local(package)
    records = [_record(package, secrets) for package in packages]
    asyncio.run(
        rattler.install(
            records,
            target_prefix=request["prefix"],
            cache_dir=request["cache"],
            show_progress=False,
            execute_link_scripts=False,  # post-link scripts run arbitrary code: never
            alternative_target_prefix=request["final"],
        )
    )
    return {}


def _verify_local(package: CondaPackage) -> None:
    """A package file of a local channel must have the locked sha256 (rattler reads file://
    packages without checking them; downloads it checks)."""
    if not package.url.startswith("file://"):
        return
    import hashlib
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    digest = hashlib.sha256()
    with open(url2pathname(urlsplit(package.url).path), "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != package.sha256:
        raise LockError(
            f"{package.url} does not match the lock: sha256 {digest.hexdigest()}, "
            f"locked {package.sha256}"
        )


def _record(package: CondaPackage, secrets: dict[str, str]) -> Any:
    import rattler

    record = rattler.PackageRecord(
        name=package.name,
        version=package.version,
        build=rattler.BuildString(package.build),
        build_number=package.build_number,
        subdir=package.subdir,
        noarch=rattler.NoArchType(cast(Any, package.noarch)) if package.noarch else None,
        depends=list(package.depends),
        sha256=bytes.fromhex(package.sha256),
        md5=bytes.fromhex(package.md5),
    )
    url = with_credentials(package.url, secrets)
    channel = with_credentials(package.channel, secrets)
    return rattler.RepoDataRecord(record, package.file_name, url, channel)


class LockError(Exception):
    """A solved package that cannot be locked (no hashes)."""


def _kind(exc: BaseException) -> str:
    """What went wrong, for the parent's message: unsatisfiable, channel, spec, install."""
    names = {type(exc).__name__, *(cls.__name__ for cls in type(exc).__mro__)}
    if "SolverError" in names:
        return "unsatisfiable"
    if names & {"GatewayError", "FetchRepoDataError", "InvalidChannelError"}:
        return "channel"
    if names & {"InvalidMatchSpecError", "InvalidPackageNameError", "InvalidVersionError"}:
        return "spec"
    if isinstance(exc, LockError):
        return "lock"
    return "install"


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    import contextlib
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)


def answer(request: dict[str, Any]) -> dict[str, Any]:
    try:
        return {"ok": True, **{"solve": solve, "install": install}[request["op"]](request)}
    except Exception as exc:  # every failure goes back to the parent as data
        return {"ok": False, "kind": _kind(exc), "message": str(exc)}


def main() -> None:
    _die_with_parent()
    for line in sys.stdin:
        sys.stdout.write(json.dumps(answer(json.loads(line))) + "\n")
        sys.stdout.flush()
    os._exit(0)  # never an interpreter shutdown with rattler's threads alive


if __name__ == "__main__":
    main()
