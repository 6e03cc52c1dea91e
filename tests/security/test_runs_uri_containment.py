"""runs:/<run-id>/<path> never reads outside that run's artifacts (.., absolute paths, links)."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.errors import ParameterError
from runner.execution.artifacts import ArtifactCopies
from runner.home import run_artifacts_dir
from runner.store.open import open_store
from tests.unit.test_store import make_new

SECRET = "the secret outside the artifacts"
PARTS = st.sampled_from(["..", ".", "", "data.txt", "sub", "link", "dirlink", "/", "etc", "x"])


def setup_run() -> str:
    with open_store() as store:  # type: ignore[attr-defined]
        run_id: str = store.create_run(make_new())
    files = run_artifacts_dir(run_id) / "files"
    (files / "sub").mkdir(parents=True)
    (files / "data.txt").write_text("inside")
    (files / "sub" / "data.txt").write_text("inside too")
    outside = files.parent.parent / "outside"  # another run's folder, or anything else
    outside.mkdir(exist_ok=True)
    (outside / "data.txt").write_text(SECRET)
    os.symlink(outside / "data.txt", files / "link")
    os.symlink(outside, files / "dirlink")
    return run_id


def contents(path: Path) -> list[str]:
    if path.is_dir():
        return [p.read_text() for p in path.rglob("*") if p.is_file()]  # through links too
    return [path.read_text()]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(PARTS, min_size=1, max_size=5))
def test_no_runs_uri_reads_outside_the_run(parts: list[str], runner_home: Path) -> None:
    run_id = getattr(test_no_runs_uri_reads_outside_the_run, "run_id", None)
    if run_id is None or not run_artifacts_dir(run_id).is_dir():
        run_id = setup_run()
        test_no_runs_uri_reads_outside_the_run.run_id = run_id  # type: ignore[attr-defined]
    copies = ArtifactCopies()
    uri = f"runs:/{run_id}/" + "/".join(parts)
    try:
        copied = Path(copies("data", uri))
    except ParameterError as exc:
        assert exc.message.startswith(("parameter 'data'", "'runs:/", "artifact ")), exc.message
        return
    finally:
        copies_made = list(copies.copies)
    assert copied.exists()
    if copied.is_dir():  # both links of the fixture lead out: a copy keeps neither
        assert not [p for p in copied.rglob("*") if p.is_symlink()]
    assert SECRET not in contents(copied)
    assert all(str(copied).startswith(str(holder)) for holder in copies_made)


def test_the_refusals_users_see(runner_home: Path) -> None:
    run_id = setup_run()
    copies = ArtifactCopies()
    cases = {
        f"runs:/{run_id}/../outside/data.txt": "is not a runs:/<run-id>/<artifact-path> URI",
        f"runs:/{run_id}/link": f"artifact 'link' of run {run_id} leads outside its artifacts",
        f"runs:/{run_id}/missing": f"parameter 'data': run {run_id} has no artifact 'missing'",
        "runs:/ffffffffffff/data.txt": "parameter 'data': run 'ffffffffffff' not found",
    }
    for uri, message in cases.items():
        try:
            copies("data", uri)
        except ParameterError as exc:
            assert message in exc.message, (uri, exc.message)
        else:
            raise AssertionError(f"{uri} was accepted")


def test_files_and_folders_inside_are_copied(runner_home: Path) -> None:
    run_id = setup_run()
    copies = ArtifactCopies()
    assert Path(copies("data", f"runs:/{run_id}/data.txt")).read_text() == "inside"
    folder = Path(copies("data", f"runs:/{run_id[:8]}/sub"))
    assert (folder / "data.txt").read_text() == "inside too"
    everything = Path(copies("data", f"runs:/{run_id}/."))
    assert sorted(p.name for p in everything.iterdir()) == ["data.txt", "sub"]
