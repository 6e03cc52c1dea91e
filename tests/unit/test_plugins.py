"""Backend discovery is cached until the installed packages change."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from runner import plugins


def _install(site: Path, name: str) -> None:
    dist = site / f"{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[runner.backends]\n{name} = mod_{name}:B\n")


def test_cached_until_a_package_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    first = plugins.entry_points_of("runner.backends")
    assert first["local"] == "backends.local:LocalBackend"

    def no_scan(groups: object) -> dict[str, dict[str, str]]:
        raise AssertionError("scanned although nothing changed")

    real_scan = plugins._scan
    monkeypatch.setattr(plugins, "_scan", no_scan)
    monkeypatch.setattr(plugins, "_memo", None)  # a new process: only the cache file is left
    assert plugins.entry_points_of("runner.backends") == first
    assert plugins.entry_points_of("runner.env_managers")["uv"].startswith("runner.envs.python")

    time.sleep(0.01)  # a distinct directory mtime
    _install(site, "extra")
    monkeypatch.setattr(plugins, "_scan", real_scan)
    assert plugins.entry_points_of("runner.backends")["extra"] == "mod_extra:B"


def test_load_object_resolves_module_and_attributes() -> None:
    assert plugins.load_object("os.path:join") is __import__("os").path.join
