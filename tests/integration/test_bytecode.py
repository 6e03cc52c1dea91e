"""Envs are built with compiled bytecode: a warm run imports the env's packages from .pyc files
whatever PYTHONDONTWRITEBYTECODE says, and writes none. Measured by counting, not timing:
`python -v` says for each module whether its code came from a .pyc or was compiled from source."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from runner.envs.python.uvcmd import uv_bin
from tests.helpers import record, run_cli, write_project

PIN = "packaging==24.1"
IMPORTS = "import packaging.version, packaging.specifiers, packaging.requirements"
_CODE_FROM = re.compile(r"^# code object from '?(?P<path>[^']+?)'?$", re.M)


def _project(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "p",
        {
            "MLproject": f"entry_points:\n  main: {{command: 'python -v -c \"{IMPORTS}\"'}}\n",
            "python_env.yaml": f"python: '3.11'\ndependencies: ['{PIN}']\n",
        },
    )


def _loaded(stderr: str, site: Path) -> tuple[int, int]:
    """(modules of ``site`` loaded from .pyc, modules of ``site`` compiled from source)."""
    paths = [m["path"] for m in _CODE_FROM.finditer(stderr) if m["path"].startswith(str(site))]
    return sum(p.endswith(".pyc") for p in paths), sum(p.endswith(".py") for p in paths)


def _pyc_files(prefix: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in prefix.rglob("*.pyc")}


def _run(project: Path, **env: str) -> tuple[str, dict[str, object]]:
    result = run_cli("run", str(project), env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    run_id = re.search(r"run ([0-9a-f]{32}) ", result.stderr)
    assert run_id, result.stderr
    return result.stderr, record(run_id.group(1))


def test_a_warm_run_imports_from_bytecode_and_writes_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # some machines set it
    project = _project(tmp_path)
    _stderr, cold = _run(project)
    environment = cold["environment"]
    assert isinstance(environment, dict) and environment["bytecode"] == "compiled"
    prefix = Path(environment["prefix"])
    site = next(prefix.glob("lib/python3.*/site-packages"))
    # every module of the installed package has its .pyc, from the build
    sources = list((site / "packaging").glob("*.py"))
    compiled = {p.name for p in (site / "packaging" / "__pycache__").glob("*.pyc")}
    assert sources and all(any(c.startswith(s.stem + ".") for c in compiled) for s in sources)
    before = _pyc_files(prefix)
    for variables in ({"PYTHONDONTWRITEBYTECODE": "1"}, {}):  # set, and unset
        stderr, warm = _run(project, **variables)
        from_pyc, from_source = _loaded(stderr, site)
        assert from_pyc >= 4 and from_source == 0, (variables, from_pyc, from_source)
        assert _pyc_files(prefix) == before  # the run wrote (and rewrote) no bytecode
        assert warm["environment"]["key"] == environment["key"]  # type: ignore[index]


def test_an_env_without_bytecode_compiles_every_import_on_every_run(tmp_path: Path) -> None:
    """The comparison: the same package installed without compiling, as before this change."""
    venv = tmp_path / "plain"
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    subprocess.run([uv_bin(), "venv", "-q", "--python", "3.11", str(venv)], check=True, env=env)
    install = [uv_bin(), "pip", "install", "-q", "--python", str(venv / "bin" / "python"), PIN]
    subprocess.run(install, check=True, env=env)
    site = next(venv.glob("lib/python3.*/site-packages"))
    argv = [str(venv / "bin" / "python"), "-v", "-c", IMPORTS]
    for _ in range(2):  # the second run is no better: nothing was written
        done = subprocess.run(
            argv, capture_output=True, text=True, env={**env, "PYTHONDONTWRITEBYTECODE": "1"}
        )
        from_pyc, from_source = _loaded(done.stderr, site)
        assert (from_pyc, from_source >= 4) == (0, True)
