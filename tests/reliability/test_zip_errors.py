"""Zips the file system cannot take as they are: one clear message and exit 1, never a traceback."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import pytest

from tests.helpers import run_cli

MLPROJECT = "name: zipped\nentry_points:\n  main:\n    command: python -c pass\n"


def make_zip(path: Path, members: list[str]) -> Path:
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as zf:
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        zf.writestr("MLproject", MLPROJECT)
        for name in members:
            if name.endswith("/"):
                zf.mkdir(name.rstrip("/"))
            else:
                zf.writestr(name, "x\n")
    return path


LONG = "n" * 300
CASES = [
    (["a", "a/b"], "Zip file member a/b is inside a, which the zip has as a file"),
    (["d/a", "d/a/b/c"], "Zip file member d/a/b/c is inside d/a, which the zip has as a file"),
    (["a/b", "a"], "Zip file member a is both a file and a directory in the zip"),
    (["a", "a/"], "Zip file member a/ is both a file and a directory in the zip"),
    (["a", "a"], "Zip file member a appears twice"),
    ([LONG], f"Zip file member {LONG[:60]}... has a name too long for this file system"),
    ([f"dir/{LONG}/x"], f"Zip file member dir/{LONG[:56]}... has a name too long for this file "
                        "system"),
]  # fmt: skip


@pytest.mark.parametrize(("members", "message"), CASES)
def test_one_clear_message(tmp_path: Path, members: list[str], message: str) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    result = run_cli("run", str(make_zip(tmp_path / "p.zip", members)), env={"TMPDIR": str(temp)})
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"error: {message}\n"
    assert list(temp.iterdir()) == []  # the half-extracted project is gone
