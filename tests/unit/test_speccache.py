"""The spec cache never trusts a document validated by another version of runner."""

from __future__ import annotations

import pytest

from runner.project import speccache


def test_key_changes_with_the_runner_version(monkeypatch: pytest.MonkeyPatch) -> None:
    today = speccache.digest(b"schema", b"name: x\n")
    monkeypatch.setattr(speccache, "__version__", "99.0.0")
    assert speccache.digest(b"schema", b"name: x\n") != today


def test_key_changes_with_schema_and_content() -> None:
    base = speccache.digest(b"schema", b"name: x\n")
    assert speccache.digest(b"schema2", b"name: x\n") != base
    assert speccache.digest(b"schema", b"name: y\n") != base
