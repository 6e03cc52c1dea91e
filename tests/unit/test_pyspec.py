"""Reading python_env.yaml and conda YAML into a PythonSpec (pure: no uv, no network)."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from runner.envs.python.pyspec import (
    PythonSpec,
    default_spec,
    read_conda_env,
    read_python_env,
    read_python_spec,
)
from runner.errors import SpecError
from runner.project.records import DockerEnv, EnvSpec, ProjectSpec
from tests.helpers import write_project


def python_env(tmp_path: Path, yaml: str, **files: str) -> PythonSpec:
    write_project(tmp_path, {"python_env.yaml": yaml, **files})
    return read_python_env(tmp_path / "python_env.yaml", tmp_path)


def conda_env(tmp_path: Path, yaml: str, **files: str) -> PythonSpec:
    write_project(tmp_path, {"conda.yaml": yaml, **files})
    return read_conda_env(tmp_path / "conda.yaml", tmp_path)


def test_python_env_fields(tmp_path: Path) -> None:
    spec = python_env(
        tmp_path,
        """
        python: "3.11.7"
        build_dependencies: [pip]
        dependencies: [six==1.16.0, "idna>=3"]
        """,
    )
    assert spec == PythonSpec("3.11.7", ("pip",), ("six==1.16.0", "idna>=3"), source="python_env")
    assert spec.requirements() == ("pip", "six==1.16.0", "idna>=3")


def test_unquoted_python_version_keeps_the_authors_text(tmp_path: Path) -> None:
    assert python_env(tmp_path, "python: 3.10\n").python == "3.10"


def test_missing_python_means_this_interpreter(tmp_path: Path) -> None:
    assert python_env(tmp_path, "dependencies: [six]\n").python == platform.python_version()
    assert python_env(tmp_path, "").python == platform.python_version()


@pytest.mark.parametrize("value", ["[3, 11]", "true", '"--index-url=x"', '"3.11; rm -rf /"'])
def test_invalid_python_value(tmp_path: Path, value: str) -> None:
    with pytest.raises(SpecError, match="python"):
        python_env(tmp_path, f"python: {value}\n")


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        python_env(tmp_path, "python: '3.11'\npackages: [six]\n")
    assert err.value.message == (
        "python_env.yaml: unknown keys ['packages']; "
        "allowed: ['python', 'build_dependencies', 'dependencies']"
    )


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="must be a mapping"):
        python_env(tmp_path, "- six\n")


@pytest.mark.parametrize("value", ["six", "[1, 2]", "{a: b}"])
def test_dependencies_must_be_a_list_of_strings(tmp_path: Path, value: str) -> None:
    with pytest.raises(SpecError, match="dependencies must be a list of requirement strings"):
        python_env(tmp_path, f"dependencies: {value}\n")


def test_requirements_files_are_inlined_relative_to_the_project(tmp_path: Path) -> None:
    spec = python_env(
        tmp_path,
        "dependencies: ['-r requirements.txt', six]\n",
        **{
            "requirements.txt": "idna  # a comment\n# only a comment\n-r sub/more.txt\n",
            "sub/more.txt": "--requirement=deeper.txt\npackaging \\\n  >=23\n",
            "sub/deeper.txt": "tomli\n",
        },
    )
    assert spec.dependencies == ("idna", "tomli", "packaging >=23", "six")


@pytest.mark.parametrize("line", ["-rreq.txt", "--requirement req.txt", "-r=req.txt"])
def test_include_spellings(tmp_path: Path, line: str) -> None:
    spec = python_env(tmp_path, f"dependencies: ['{line}']\n", **{"req.txt": "six\n"})
    assert spec.dependencies == ("six",)


def test_constraints_and_index_options_are_collected(tmp_path: Path) -> None:
    spec = python_env(
        tmp_path,
        "dependencies: ['-r req.txt', '-c constraints.txt']\n",
        **{
            "req.txt": "--index-url https://pkgs.example.invalid/simple\nsix\n",
            "constraints.txt": "six<2\n--index-url https://pkgs.example.invalid/simple\n",
        },
    )
    assert spec.dependencies == ("six",)
    assert spec.constraints == ("six<2",)
    assert spec.options == ("--index-url https://pkgs.example.invalid/simple",)


def test_digest_follows_the_contents_of_included_files(tmp_path: Path) -> None:
    yaml = "python: '3.11'\ndependencies: ['-r req.txt']\n"
    first = python_env(tmp_path, yaml, **{"req.txt": "six\n"}).digest()
    assert python_env(tmp_path, yaml, **{"req.txt": "six\n"}).digest() == first
    assert python_env(tmp_path, yaml, **{"req.txt": "six==1.16.0\n"}).digest() != first


def test_digest_ignores_where_the_spec_came_from(tmp_path: Path) -> None:
    a = PythonSpec("3.11", dependencies=("six",), source="python_env", warnings=("w",))
    assert a.digest() == PythonSpec("3.11", dependencies=("six",), source="conda").digest()


@pytest.mark.parametrize("target", ["../outside.txt", "/etc/hostname"])
def test_include_outside_the_project_is_refused(tmp_path: Path, target: str) -> None:
    (tmp_path / "outside.txt").write_text("six\n")
    project = tmp_path / "project"
    with pytest.raises(SpecError) as err:
        python_env(project, f"dependencies: ['-r {target}']\n")
    assert err.value.message == (
        f"python_env.yaml: requirements file {target} is outside the project: refused"
    )


def test_symlink_escaping_the_project_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("six\n")
    project = tmp_path / "project"
    project.mkdir()
    (project / "req.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(SpecError) as err:
        python_env(project, "dependencies: ['-r req.txt']\n")
    assert err.value.message == (
        f"python_env.yaml: requirements file req.txt is a link to "
        f"{(tmp_path / 'secret.txt').resolve()}, outside the project: refused"
    )


def test_missing_requirements_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        python_env(tmp_path, "dependencies: ['-r nope.txt']\n")
    assert err.value.message == "python_env.yaml: requirements file not found: nope.txt"


def test_include_cycle(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        python_env(
            tmp_path,
            "dependencies: ['-r a.txt']\n",
            **{"a.txt": "-r b.txt\n", "b.txt": "-r a.txt\n"},
        )
    assert (
        err.value.message == "b.txt: requirements files include each other: a.txt -> b.txt -> a.txt"
    )


def test_remote_requirements_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="remote requirements files are not supported"):
        python_env(tmp_path, "dependencies: ['-r https://example.invalid/req.txt']\n")


def test_oversized_requirements_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="exceeds size limit"):
        python_env(tmp_path, "dependencies: ['-r big.txt']\n", **{"big.txt": "#" * 1_000_001})


def test_non_utf8_requirements_file(tmp_path: Path) -> None:
    write_project(tmp_path, {"python_env.yaml": "dependencies: ['-r req.txt']\n"})
    (tmp_path / "req.txt").write_bytes(b"six\xff\n")
    with pytest.raises(SpecError, match=r"req\.txt: invalid UTF-8"):
        read_python_env(tmp_path / "python_env.yaml", tmp_path)


# --- conda YAML read for uv -------------------------------------------------------------


@pytest.mark.parametrize(
    ("dep", "python"),
    [
        ("python=3.8.13", "3.8.13"),
        ("python==3.10", "3.10"),
        ("python 3.9", "3.9"),
        ("python=3.9.*", "3.9"),
        ("python>=3.11", "3.11"),
        ("conda-forge::python=3.10.4=h12_0", "3.10.4"),
    ],
)
def test_conda_python_pin(tmp_path: Path, dep: str, python: str) -> None:
    assert conda_env(tmp_path, f"dependencies: ['{dep}']\n").python == python


def test_conda_bare_python_must_be_pinned_like_mlflow(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        conda_env(tmp_path, "dependencies: [python]\n")
    assert err.value.message == (
        "Invalid dependency for python: python. It must be pinned (e.g. python=3.8.13)."
    )


@pytest.mark.parametrize("op", ["<", ">", "!="])
def test_conda_python_comparator_is_refused(tmp_path: Path, op: str) -> None:
    with pytest.raises(SpecError) as err:
        conda_env(tmp_path, f"dependencies: ['python{op}3.9']\n")
    assert err.value.message == (
        f"Invalid version comparator for python: '{op}'. Must be one of ['<=', '>=', '=', '==']."
    )


def test_conda_pip_section_build_packages_and_dropped_deps(tmp_path: Path) -> None:
    spec = conda_env(
        tmp_path,
        """
        name: demo
        channels: [conda-forge]
        dependencies:
          - python=3.11
          - pip
          - setuptools=68
          - wheel>=0.40
          - numpy=1.26
          - cudatoolkit
          - pip: [six, '-r req.txt']
        """,
        **{"req.txt": "idna\n"},
    )
    assert spec.python == "3.11"
    assert spec.build_dependencies == ("pip", "setuptools==68.*", "wheel>=0.40")
    assert spec.dependencies == ("six", "idna")
    assert spec.source == "conda"
    assert spec.warnings == (
        "The following conda dependencies will not be installed in the resulting "
        "environment: ['numpy=1.26', 'cudatoolkit']",
    )


def test_conda_without_python_uses_this_interpreter_with_a_warning(tmp_path: Path) -> None:
    spec = conda_env(tmp_path, "dependencies: [{pip: [six]}]\n")
    assert spec.python == platform.python_version()
    assert spec.warnings == (
        f"conda.yaml does not pin python; using this interpreter's {spec.python}",
    )


@pytest.mark.parametrize(
    ("deps", "message"),
    [
        ("[3]", "conda.yaml: invalid conda dependency: 3. Must be a string or a mapping"),
        ("[{npm: [x]}]", "conda.yaml: invalid conda dependency: {'npm': ['x']}"),
        ("[{pip: six}]", "conda.yaml: the pip section must be a list of requirement strings"),
        ("python", "conda.yaml: must be a mapping whose 'dependencies' is a list"),
    ],
)
def test_conda_invalid_dependencies(tmp_path: Path, deps: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        conda_env(tmp_path, f"dependencies: {deps}\n")
    assert err.value.message.startswith(message)


# --- dispatch by env kind -------------------------------------------------------------


def test_no_env_file_is_this_interpreter_and_nothing_else(tmp_path: Path) -> None:
    spec = ProjectSpec(root=tmp_path, name=None, env=EnvSpec(kind="system"))
    assert read_python_spec(spec) == default_spec() == PythonSpec(platform.python_version())


def test_dispatch_reads_the_named_file(tmp_path: Path) -> None:
    write_project(tmp_path, {"env/conda.yaml": "dependencies: ['python=3.9', {pip: [six]}]\n"})
    env = EnvSpec(kind="conda_env", file=tmp_path / "env" / "conda.yaml")
    spec = read_python_spec(ProjectSpec(root=tmp_path, name="p", env=env))
    assert (spec.python, spec.dependencies) == ("3.9", ("six",))


def test_docker_env_has_no_python_spec(tmp_path: Path) -> None:
    env = EnvSpec(kind="docker_env", docker=DockerEnv(image="python:3.11"))
    with pytest.raises(SpecError, match="a docker_env project has no Python environment"):
        read_python_spec(ProjectSpec(root=tmp_path, name="p", env=env))


# --- the parse is cached by content -----------------------------------------------------

READ_IN_A_FRESH_PROCESS = """
import sys
from pathlib import Path
from runner.envs.python.pyspec import read_python_env
root = Path(sys.argv[1])
print(read_python_env(root / "python_env.yaml", root).dependencies, "yaml" in sys.modules)
"""


def read_fresh(root: Path) -> str:
    argv = [sys.executable, "-c", READ_IN_A_FRESH_PROCESS, str(root)]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def test_a_known_env_file_is_read_without_a_yaml_parser(tmp_path: Path) -> None:
    write_project(tmp_path, {"python_env.yaml": "dependencies: [six]\n"})
    assert read_fresh(tmp_path) == "('six',) True"
    assert read_fresh(tmp_path) == "('six',) False"  # a warm run imports no YAML parser
    (tmp_path / "python_env.yaml").write_text("dependencies: [idna]\n")
    assert read_fresh(tmp_path) == "('idna',) True"  # keyed by content


def test_a_cached_env_file_is_still_checked(tmp_path: Path) -> None:
    for _ in range(2):
        with pytest.raises(SpecError, match=r"python_env.yaml: unknown keys \['channels'\]"):
            python_env(tmp_path, "channels: [x]\n")
