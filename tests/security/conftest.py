"""Hypothesis keeps its caches in a temp dir, so test runs leave no .hypothesis/ in the repo."""

from __future__ import annotations

import shutil
import tempfile

import pytest
from hypothesis import configuration


def pytest_configure(config: pytest.Config) -> None:
    # database=None still leaves constant and charmap caches in ./.hypothesis otherwise.
    home = tempfile.mkdtemp(prefix="hypothesis-")
    configuration.set_hypothesis_home_dir(home)
    config.add_cleanup(lambda: shutil.rmtree(home, ignore_errors=True))
