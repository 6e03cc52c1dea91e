"""Building a conda env from its lock: link the packages with rattler, the pip part with uv."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from runner.envs.base import Progress
from runner.envs.conda import activation
from runner.envs.conda.lockdata import CondaLock, CondaPackage
from runner.envs.conda.solve import conda_home, run_worker
from runner.envs.python.uvfailure import failure_summary
from runner.errors import EnvBuildError

PIP_LOCK_IN_ENV = ".runner-pip-lock.txt"
INSTALL_LOCK_TIMEOUT = float(os.environ.get("RUNNER_ENV_LOCK_TIMEOUT", "3600"))


def package_cache() -> Path:
    """One package cache for every conda env of this RUNNER_HOME."""
    return conda_home() / "pkgs"


def link_packages(
    lock: CondaLock, prefix: Path, final: Path, secrets: Mapping[str, str], progress: Progress
) -> None:
    """Install exactly the locked packages (no solve) into ``prefix``, which will be renamed
    to ``final``: files get ``final`` as their prefix."""
    from runner.locks import LockTimeout, exclusive_lock

    progress(f"installing {len(lock.conda)} conda packages")
    cache = package_cache()
    cache.mkdir(parents=True, exist_ok=True)
    request = {
        "packages": [asdict(package) for package in lock.conda],
        "prefix": str(prefix),
        "final": str(final),
        "cache": str(cache),
        "secrets": dict(secrets),
    }

    def waiting() -> None:
        progress("waiting for another build using the conda package cache")

    # rattler locks single cache entries; this lock keeps whole fetch+link runs of concurrent
    # builds apart, so one build never links a package another is still extracting.
    lock_path = cache / ".runner-install.lock"
    try:
        with exclusive_lock(lock_path, timeout=INSTALL_LOCK_TIMEOUT, on_wait=waiting):
            answer = run_worker("install", request)
    except LockTimeout as exc:
        raise EnvBuildError(f"timed out waiting for the conda package cache ({exc.path})") from exc
    if not answer["ok"]:
        raise EnvBuildError(
            f"cannot install the conda packages: {answer['message']}",
            hint="a package whose sha256 differs from the lock is refused",
        )


def install_pip(lock: CondaLock, prefix: Path, progress: Progress, logs: list[str]) -> None:
    """The pinned ``pip:`` files into the env's own interpreter with uv (no resolving)."""
    from runner.envs.python.uvcmd import run_uv

    lines = [f"{p.name} @ {p.url} --hash=sha256:{p.sha256}" for p in lock.pip]
    (prefix / PIP_LOCK_IN_ENV).write_text("\n".join(lines) + "\n", encoding="utf-8")
    progress(f"installing {len(lines)} pip packages")
    python = prefix / "bin" / "python"
    args = ["pip", "install", "--python", str(python), "--no-deps", "--require-hashes"]
    args += ["--compile-bytecode", "--break-system-packages", "-r", str(prefix / PIP_LOCK_IN_ENV)]
    result = run_uv(args, cwd=prefix)
    logs.append(result.log)
    if result.returncode != 0:
        raise EnvBuildError(
            f"cannot install the pip section (uv exited with {result.returncode}):\n"
            f"{failure_summary(result.log)}",
            hint="the full installer log is attached to the run as env-build.log",
            log="\n".join(logs),
        )


def relocate_scripts(prefix: Path, final: Path) -> None:
    """Scripts uv wrote name the temp prefix in their shebang: point them at ``final``."""
    bin_dir = prefix / "bin"
    old = f"#!{prefix}/".encode()
    for path in bin_dir.iterdir() if bin_dir.is_dir() else ():
        if path.is_symlink() or not path.is_file():
            continue
        with path.open("rb") as handle:
            head = handle.read(len(old))
        if head == old:
            data = path.read_bytes()
            path.write_bytes(f"#!{final}/".encode() + data[len(old) :])


def scrub_conda_meta(prefix: Path) -> None:
    """conda-meta/ keeps each package's URL and channel: without the channel's credentials."""
    from runner.envs.conda.channels import redact

    for meta in (prefix / "conda-meta").glob("*.json"):
        data = json.loads(meta.read_text(encoding="utf-8"))
        clean = {
            key: redact(data[key]) for key in ("url", "channel") if isinstance(data.get(key), str)
        }
        if any(data[key] != value for key, value in clean.items()):
            meta.write_text(json.dumps({**data, **clean}, indent=2), encoding="utf-8")


def finish(prefix: Path, lock: CondaLock) -> dict[str, Any]:
    """Write the activation file; the facts kept in the marker and recorded on the run."""
    variables, skipped = activation.collect(prefix, lock.variables)
    activation.write_activation(prefix, variables)
    facts: dict[str, Any] = {"conda_packages": len(lock.conda), "pip_packages": len(lock.pip)}
    if skipped:
        facts["activation_skipped"] = skipped  # scripts that do more than set variables
    return facts


def check_env(prefix: Path, lock: CondaLock, logs: list[str]) -> None:
    """Every locked package is in conda-meta/, the interpreter runs, the pip part is there."""
    installed = {p.name for p in (prefix / "conda-meta").glob("*.json")}
    missing = [p.file_name for p in lock.conda if _meta_name(p) not in installed]
    if missing:
        raise EnvBuildError(f"the new conda environment lacks {', '.join(missing[:5])}")
    if lock.python() is None:
        return
    expected = {p.name: p.version for p in lock.pip}
    script = (
        "import importlib.metadata as md, json, sys\n"
        "names = json.loads(sys.argv[1])\n"
        "print(json.dumps({n: md.version(n) for n in names}))\n"
    )
    argv = [str(prefix / "bin" / "python"), "-I", "-c", script, json.dumps(sorted(expected))]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvBuildError(f"the conda environment's python does not run: {exc}") from exc
    logs.append(f"$ health check\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        raise EnvBuildError(
            f"the conda environment's python failed its check:\n{proc.stderr[-2000:]}",
            log="\n".join(logs),
        )
    found = json.loads(proc.stdout)
    wrong = [f"{n} {found.get(n)} (locked {v})" for n, v in expected.items() if found.get(n) != v]
    if wrong:
        raise EnvBuildError(f"pip packages differ from the lock: {', '.join(wrong)}")


def _meta_name(package: CondaPackage) -> str:
    return f"{package.name}-{package.version}-{package.build}.json"


def relocate_prefix(prefix: Path, final: Path) -> None:
    """Files an external installer patched with the temp prefix get ``final`` instead.

    conda-meta/ lists them (``prefix_placeholder``); binary files keep their length (the
    shorter ``final`` is padded with NULs, as conda does), hard links are broken first so
    the package cache is never written through.
    """
    old, new = str(prefix).encode(), str(final).encode()
    for meta in (prefix / "conda-meta").glob("*.json"):
        data = json.loads(meta.read_text(encoding="utf-8"))
        for entry in (data.get("paths_data") or {}).get("paths") or []:
            if entry.get("prefix_placeholder"):
                binary = entry.get("file_mode") == "binary"
                _repatch(prefix / entry["_path"], old, new, binary=binary)


def _repatch(path: Path, old: bytes, new: bytes, *, binary: bool) -> None:
    if path.is_symlink() or not path.is_file():
        return
    data = path.read_bytes()
    if old not in data:
        return
    patched = _binary_replace(data, old, new) if binary else data.replace(old, new)
    mode = path.stat().st_mode
    path.unlink()  # a hard link into the cache: write a new file instead
    path.write_bytes(patched)
    os.chmod(path, mode)


def _binary_replace(data: bytes, old: bytes, new: bytes) -> bytes:
    """Replace inside NUL-terminated strings, padding each to its old length."""
    out = bytearray()
    start = 0
    while (found := data.find(old, start)) != -1:
        end = data.find(b"\0", found)
        end = len(data) if end == -1 else end
        chunk = data[found:end].replace(old, new)
        out += data[start:found] + chunk + b"\0" * (end - found - len(chunk))
        start = end
    return bytes(out + data[start:])
