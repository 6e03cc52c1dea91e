"""Running the uv binary: which one, with what environment, and capturing its log."""

from __future__ import annotations

import configparser
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.errors import EnvBuildError

LineFn = Callable[[str], None]

# pip's settings that uv understands under another name; only used when the uv one is unset.
_PIP_TO_UV = {
    "index-url": ("UV_INDEX_URL", ("UV_INDEX_URL", "UV_DEFAULT_INDEX")),
    "extra-index-url": ("UV_EXTRA_INDEX_URL", ("UV_EXTRA_INDEX_URL", "UV_INDEX")),
    "find-links": ("UV_FIND_LINKS", ("UV_FIND_LINKS",)),
}


@dataclass(frozen=True)
class UvResult:
    returncode: int
    log: str


def neutral_cwd() -> Path:
    """Where uv runs: inside RUNNER_HOME, so no project's or stranger's uv.toml is picked up."""
    from runner.home import runner_home

    path = runner_home() / "envs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def uv_bin() -> str:
    """``$RUNNER_UV`` if set (a pinned or wrapped uv), else the binary of the ``uv`` package."""
    override = os.environ.get("RUNNER_UV")
    if override:
        return override
    import uv

    return str(uv.find_uv_bin())


def uv_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment uv runs with: pip's index settings mapped, downloads off by default."""
    env = dict(os.environ if base is None else base)
    for pip_name, (uv_name, uv_names) in _PIP_TO_UV.items():
        value = _pip_setting(env, pip_name)
        if value and not any(env.get(name) for name in uv_names):
            env[uv_name] = value
    if env.get("RUNNER_ALLOW_PYTHON_DOWNLOADS") != "1":
        env["UV_PYTHON_DOWNLOADS"] = "never"
    # The env is chosen explicitly with --python; an active venv must not leak in.
    env.pop("VIRTUAL_ENV", None)
    env.pop("CONDA_PREFIX", None)
    env["UV_NO_PROGRESS"] = "1"
    return env


def _pip_setting(env: dict[str, str], name: str) -> str | None:
    """A pip setting from PIP_* variables, else pip's config files (as ``pip config`` reads)."""
    from_env = env.get("PIP_" + name.upper().replace("-", "_"))
    if from_env:
        return " ".join(from_env.split())
    value: str | None = None
    for path in _pip_config_files(env):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        for section in ("global", "install"):
            if parser.has_option(section, name):
                value = " ".join(parser.get(section, name).split())
    return value


def _pip_config_files(env: dict[str, str]) -> list[Path]:
    """pip's config files, lowest precedence first; PIP_CONFIG_FILE wins."""
    home = Path(env.get("HOME", "~")).expanduser()
    xdg = Path(env.get("XDG_CONFIG_HOME") or home / ".config")
    files = [Path("/etc/xdg/pip/pip.conf"), Path("/etc/pip.conf"), home / ".pip" / "pip.conf"]
    files.append(xdg / "pip" / "pip.conf")
    if env.get("PIP_CONFIG_FILE"):
        files.append(Path(env["PIP_CONFIG_FILE"]))
    return [path for path in files if path.is_file()]


def run_uv(args: Sequence[str], *, cwd: Path, on_line: LineFn | None = None) -> UvResult:
    """Run ``uv ARGS`` with stdout and stderr merged, streaming lines to ``on_line``."""
    lines: list[str] = []
    proc = _spawn(args, cwd, uv_env(), stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    with proc:
        for line in proc.stdout:
            lines.append(line)
            if on_line is not None:
                on_line(line.rstrip("\n"))
    return UvResult(proc.returncode, f"$ uv {' '.join(args)}\n" + "".join(lines))


def capture_uv(args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> tuple[int, str, str]:
    """Run ``uv ARGS`` to completion; returns (exit code, stdout, stderr)."""
    proc = _spawn(args, cwd, uv_env(dict(env)), stderr=subprocess.PIPE)
    out, err = proc.communicate()
    return proc.returncode, out, err


def _spawn(
    args: Sequence[str], cwd: Path, env: dict[str, str], stderr: int
) -> subprocess.Popen[str]:
    argv = [uv_bin(), *args]
    try:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    except OSError as exc:
        raise EnvBuildError(
            f"cannot start uv ({argv[0]}): {exc.strerror or exc}",
            hint="reinstall runner (uv is one of its dependencies) "
            "or point RUNNER_UV at a uv binary",
        ) from exc
