"""Solving a conda spec with py-rattler, and pinning its ``pip:`` section with uv (cold path)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.envs.base import Progress
from runner.envs.conda.channels import channel_urls, redact
from runner.envs.conda.envfile import CondaSpec
from runner.envs.conda.lockdata import CondaLock, CondaPackage, PipPackage
from runner.errors import EnvBuildError

if TYPE_CHECKING:
    import rattler


def conda_home() -> Path:
    """Shared conda state: the package cache and the repodata cache (under RUNNER_HOME)."""
    from runner.home import runner_home

    return runner_home() / "conda"


def current_subdir() -> str:
    import rattler

    return str(rattler.Subdir.current())


def solve_conda(spec: CondaSpec, progress: Progress) -> CondaLock:
    """Every package of ``spec`` for this platform, then the ``pip:`` section pinned for its
    python: the lock that is hashed, recorded and installed."""
    import rattler.exceptions as rerr

    urls = channel_urls(spec.channels, spec.root)
    progress(f"solving {len(spec.specs)} conda specs from {', '.join(map(redact, urls))}")
    try:
        records = asyncio.run(_solve(spec, urls))
    except rerr.SolverError as exc:
        raise unsatisfiable(spec, str(exc)) from exc
    except (rerr.GatewayError, rerr.FetchRepoDataError, rerr.InvalidChannelError) as exc:
        raise EnvBuildError(
            f"cannot read the conda channels of {spec.origin}: {_first_lines(exc)}",
            hint="check the channels (names, URLs or file:// paths) and the network",
        ) from exc
    except (rerr.InvalidMatchSpecError, rerr.InvalidPackageNameError) as exc:
        raise EnvBuildError(f"{spec.origin}: invalid conda dependency: {exc}") from exc
    lock = CondaLock(
        current_subdir(), tuple(redact(u) for u in urls), tuple(map(conda_package, records))
    )
    progress(f"solved {len(lock.conda)} conda packages")
    if not spec.pip:
        return lock
    return CondaLock(lock.platform, lock.channels, lock.conda, pin_pip(spec, lock, progress))


async def _solve(spec: CondaSpec, urls: list[str]) -> list[rattler.RepoDataRecord]:
    import rattler

    config = rattler.ChannelConfig(**_alias(), root_dir=str(spec.root))
    channels = [rattler.Channel(url, config) for url in urls]
    gateway = rattler.Gateway(cache_dir=conda_home() / "repodata")
    records: list[rattler.RepoDataRecord] = await rattler.solve(
        sources=channels,
        specs=list(spec.specs),
        gateway=gateway,
        virtual_packages=rattler.VirtualPackage.detect(),
        channel_priority=rattler.ChannelPriority.Strict,
    )
    return records


def _alias() -> dict[str, str]:
    """``RUNNER_CONDA_CHANNEL_ALIAS``: where channel names point (an air-gapped mirror)."""
    alias = os.environ.get("RUNNER_CONDA_CHANNEL_ALIAS")
    return {"channel_alias": alias.rstrip("/") + "/"} if alias else {}


def unsatisfiable(spec: CondaSpec, detail: str) -> EnvBuildError:
    """The solver's explanation, with the specs that were asked for."""
    asked = ", ".join(spec.specs)
    return EnvBuildError(
        f"cannot solve the conda environment of {spec.origin} ({asked}):\n{detail.strip()}",
        hint=f"change the unsatisfiable specs in {spec.origin}, or add a channel that has them",
    )


def _first_lines(exc: BaseException, count: int = 3) -> str:
    return "\n".join(str(exc).strip().splitlines()[:count])


def conda_package(record: Any) -> CondaPackage:
    """A rattler ``RepoDataRecord`` as a lock entry (URL without credentials)."""
    if record.sha256 is None or record.md5 is None:
        raise EnvBuildError(
            f"the channel gives no sha256 and md5 for {record.file_name}: it cannot be locked",
            hint="index the channel with a current tool (rattler-index, conda-index)",
        )
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


def pin_pip(spec: CondaSpec, lock: CondaLock, progress: Progress) -> tuple[PipPackage, ...]:
    """The ``pip:`` section resolved for the env's python: one file (URL, sha256) per package."""
    from runner.envs.conda.pippin import resolve_pip

    python = lock.python()
    if python is None:
        raise EnvBuildError(
            f"{spec.origin} has a pip section but its conda packages include no python",
            hint="add python (e.g. python=3.11) to the dependencies",
        )
    return resolve_pip(spec, python, progress)
