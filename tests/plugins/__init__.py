"""Toy plugins installed from a temporary distribution, the way a third-party package would be."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOY_MANAGER = "tests.plugins.toy_manager:ToyManager"


def write_dist_info(site: Path, name: str, entry_points: Mapping[str, Mapping[str, str]]) -> Path:
    """A ``NAME-0.1.dist-info`` folder in ``site`` declaring ``{group: {name: "mod:attr"}}``."""
    dist = site / f"{name.replace('-', '_')}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    groups = (
        f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in points.items())
        for group, points in entry_points.items()
    )
    (dist / "entry_points.txt").write_text("\n".join(groups))
    return dist


def install_toy_manager(site: Path) -> dict[str, str]:
    """Register ``toy`` (``tests/plugins/toy_manager.py``) from ``site``.

    Returns the environment a subprocess needs to see it: ``site`` and this repository on
    PYTHONPATH (in-process, put ``site`` on ``sys.path``).
    """
    write_dist_info(site, "toy-manager", {"runner.env_managers": {"toy": TOY_MANAGER}})
    return {"PYTHONPATH": pythonpath(site, REPO)}


def pythonpath(*folders: Path) -> str:
    """``folders`` in front of the current PYTHONPATH."""
    return os.pathsep.join([*map(str, folders), *filter(None, [os.environ.get("PYTHONPATH")])])


def use_site(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: distributions in ``site`` are found, by a fresh registry (undone after)."""
    from runner.envs import registry

    monkeypatch.syspath_prepend(str(site))
    fresh = functools.cache(registry.loaded_managers.__wrapped__)
    monkeypatch.setattr(registry, "loaded_managers", fresh)
