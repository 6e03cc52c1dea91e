"""Every file runner reads from a project stays inside it, through links and any spelling."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.envs.python.lock import read_committed_lock
from runner.envs.python.pyspec import read_python_env, read_python_spec
from runner.errors import SpecError
from runner.project.files import read_project_file
from runner.project.spec import load_spec
from tests.helpers import records, run_cli, write_project

HINT = "runner reads only files inside the project; copy the file into the project"
SECRET = "secret-pin==6.6.6"  # shaped like a pin, so a lock or -r file would take it in
INSIDE = "inside-pin==1.0"
MAIN = "entry_points:\n  main:\n    command: python -c pass\n"
PY_ENV = "python_env.yaml"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file outside the project (at tmp_path/proj) whose content must never be read."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET + "\n")
    return outside / "secret.txt"


def assert_never_read(result_text: str, runner_home: Path) -> None:
    """The secret is nowhere: not in the output, the store, the logs or any cache."""
    assert SECRET not in result_text
    for path in runner_home.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def refusal_before_the_run(project: Path, runner_home: Path) -> str:
    """What ``runner run`` said refusing ``project`` before a run existed, having read nothing."""
    result = run_cli("run", str(project))
    assert (result.returncode, result.stdout) == (1, "")
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr
    assert records() == []
    assert_never_read(result.stdout + result.stderr, runner_home)
    return result.stderr


def failure_of_the_run(project: Path, runner_home: Path) -> str:
    """The reason the recorded run FAILED, once it is shown to have said so and read nothing."""
    result = run_cli("run", str(project))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "unexpected error" not in result.stderr
    [run] = records()
    assert run["status"] == "FAILED"
    assert result.stderr.endswith(f"error: {run['failure_reason']}\nhint: {HINT}\n")
    assert_never_read(result.stdout + result.stderr, runner_home)
    return str(run["failure_reason"])


def uv_project(root: Path, env: str = 'python: "3.11"\n') -> Path:
    return write_project(root, {"MLproject": f"python_env: {PY_ENV}\n{MAIN}", PY_ENV: env})


# --- through the CLI ---------------------------------------------------------------------------


def test_a_lock_linked_out_of_the_project_is_never_read(
    tmp_path: Path, secret: Path, runner_home: Path
) -> None:
    project = uv_project(tmp_path / "proj")
    (project / "runner.lock").symlink_to(secret)
    message = f"runner.lock is a link to {secret}, outside the project: refused"
    assert (
        refusal_before_the_run(project, runner_home) == f"error: {message}\nhint: {HINT}\n"
    )  # the uv manager's preflight


@pytest.mark.parametrize("name", ["MLproject", PY_ENV, "conda.yaml"])
def test_a_project_file_linked_out_is_refused_before_the_run(
    tmp_path: Path, secret: Path, runner_home: Path, name: str
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / name).symlink_to(secret)
    message = f"{name} is a link to {secret}, outside the project: refused"
    assert refusal_before_the_run(project, runner_home) == f"error: {message}\nhint: {HINT}\n"


def test_an_env_file_under_a_dir_linked_out_is_refused(
    tmp_path: Path, secret: Path, runner_home: Path
) -> None:
    project = write_project(
        tmp_path / "proj", {"MLproject": f"python_env: envs/secret.txt\n{MAIN}"}
    )
    (project / "envs").symlink_to(secret.parent)
    message = (
        "MLproject:1:1 python_env: python_env file 'envs/secret.txt' is a link to "
        f"{secret}, outside the project: refused"
    )
    hint = "`runner spec schema` prints the MLproject format (a JSON Schema)"
    assert refusal_before_the_run(project, runner_home) == f"error: {message}\nhint: {hint}\n"


@pytest.mark.parametrize(
    ("include", "linked"),
    [
        ("-r conf/secret.txt", True),  # through a link to a dir
        ("-c link", True),  # a constraints file that is a link
        ("-r ../outside/secret.txt", False),  # no link: a relative spelling
    ],
)
def test_a_requirements_include_out_of_the_project_is_never_read(
    tmp_path: Path, secret: Path, runner_home: Path, include: str, linked: bool
) -> None:
    project = uv_project(tmp_path / "proj", f'python: "3.11"\ndependencies: ["{include}"]\n')
    (project / "conf").symlink_to(secret.parent)
    (project / "link").symlink_to(secret)
    where = f"a link to {secret}, outside the project" if linked else "outside the project"
    message = f"{PY_ENV}: requirements file {include.split()[1]} is {where}: refused"
    assert failure_of_the_run(project, runner_home) == message


def test_links_inside_the_project_keep_working(tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", {"specs/MLproject": MAIN})
    (project / "MLproject").symlink_to("specs/MLproject")
    result = run_cli("run", str(project), "--env-manager", "local")
    assert result.returncode == 0, result.stderr
    assert [run["status"] for run in records()] == ["FINISHED"]


# --- the readers, on real files ---------------------------------------------------------------


def test_env_files_and_includes_linked_inside_are_read(tmp_path: Path) -> None:
    files = {
        "envs/py.yaml": 'dependencies: ["-r conf/base.txt", "-c sub/../pins.txt"]\n',
        "shared/base.txt": f"{INSIDE}\n",
        "pins.txt": "six<2\n",
        "sub/keep": "",
    }
    project = write_project(tmp_path / "proj", files)
    (project / PY_ENV).symlink_to("envs/py.yaml")
    (project / "conf").symlink_to("shared")  # includes are read relative to the project
    spec = read_python_spec(load_spec(project))
    assert (spec.dependencies, spec.constraints) == ((INSIDE,), ("six<2",))


# --- property: no spelling or chain of links reads anything outside ---------------------------

SLOTS = ["l0", "l1", "d1/l2", "d1/d2/l3", "runner.lock"]
# places under the temp dir that holds the project ("proj") and the outside ("outside")
PLACES = [
    "outside/secret.txt", "outside/od/secret.txt", "outside/od", "outside", "proj", "proj/in.txt",
    "proj/d1", "proj/d1/in.txt", "proj/l0", "proj/d1/l2", "proj/runner.lock",
]  # fmt: skip
NEAR = ["l0", "l1", "l2", "l3", "d1", "d2", "d1/l2", "d2/l3", "in.txt", "runner.lock", ".", ".."]
TAILS = ["secret.txt", "od/secret.txt", "in.txt", "..", "../in.txt", "d2/l3", "l0"]
hops = st.integers(0, 4).map(lambda n: "../" * n)
spelling = st.one_of(
    st.builds(str.__add__, hops, st.sampled_from(PLACES)),  # relative, climbing to the temp dir
    st.sampled_from(PLACES).map(lambda place: "{base}/" + place),  # absolute
    st.sampled_from(NEAR),  # links to links, to dirs, to files nearby
    st.builds("{}/{}".format, st.sampled_from(NEAR), st.sampled_from(TAILS)),
    st.lists(
        st.sampled_from([*NEAR, "outside", "proj", "secret.txt", "od"]), min_size=1, max_size=6
    ).map("/".join),
)


def _path(base: Path, spelled: str) -> str:
    return spelled.replace("{base}", str(base))


def _tree(base: Path, links: list[tuple[str, str]]) -> Path:
    root = base / "proj"
    (root / "d1" / "d2").mkdir(parents=True)
    (base / "outside" / "od").mkdir(parents=True)
    for where in ("", "d1/"):
        (root / f"{where}in.txt").write_text(f"{INSIDE}\n")
    for where in ("", "od/"):
        (base / "outside" / f"{where}secret.txt").write_text(f"{SECRET}\n")
    for slot, target in links:
        link = root / slot
        if not os.path.lexists(link):
            link.symlink_to(_path(base, target))
    return root


def _what_it_gave(reader: Callable[[], object]) -> str:
    """What a read returned, or the message it was refused with: the user sees one of them."""
    try:
        return str(reader())
    except SpecError as exc:  # refused, or not there: fine, as long as nothing leaked
        return exc.message


@settings(max_examples=400, deadline=None, database=None)
@given(
    links=st.lists(st.tuples(st.sampled_from(SLOTS), spelling), max_size=5),
    wanted=spelling,
)
def test_no_link_chain_or_spelling_reads_outside(links: list[tuple[str, str]], wanted: str) -> None:
    with tempfile.TemporaryDirectory() as temp:
        base = Path(temp).resolve()
        root = _tree(base, links)
        relative = _path(base, wanted)
        for reader in (
            lambda: read_project_file(root, relative),
            lambda: read_committed_lock(root),
            lambda: _include(root, relative),
        ):
            assert SECRET not in _what_it_gave(reader)
        assert _read_is_inside(root, relative)


def _include(root: Path, relative: str) -> object:
    (root / "env.yaml").write_text(f'dependencies: ["-r {relative}"]\n')
    spec = read_python_env(root / "env.yaml", root)
    return (spec.dependencies, spec.constraints)


def _read_is_inside(root: Path, relative: str) -> bool:
    """Whatever is read is what the path really leads to, and that is inside the project."""
    try:
        data = read_project_file(root, relative)
    except SpecError:
        return True  # refused: nothing was read
    real = Path(os.path.realpath(root / relative))
    return real.is_relative_to(root) and data == real.read_bytes()
