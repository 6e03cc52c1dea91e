"""MLproject loading: MLflow-compatible records, errors with file:line:col, cached validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import runner.project.spec
import runner.project.yamlsafe
from runner.errors import SpecError
from runner.project.records import (
    DockerBuild,
    DockerEnv,
    EntryPoint,
    EnvSpec,
    Parameter,
    ProjectSpec,
)
from runner.project.spec import get_entry_point, load_spec

EXAMPLE = """
name: example
entry_points:
  greeter:
    parameters:
      greeting: {type: string, default: hi}
      name: string
    command: python greeter.py {greeting} {name}
  line_count:
    parameters:
      path: path
    command: wc -l {path}
  download_uri:
    parameters:
      uri: uri
    command: echo {uri}
  sleep:
    parameters:
      duration: int
    command: sleep {duration}
  main:
    command: echo main
"""


def project(tmp_path: Path, text: str, name: str = "MLproject", **files: str) -> Path:
    (tmp_path / name).write_text(textwrap.dedent(text))
    for file_name, content in files.items():
        (tmp_path / file_name).write_text(content)
    return tmp_path


def spec_of(tmp_path: Path, text: str, **files: str) -> ProjectSpec:
    return load_spec(project(tmp_path, text, **files))


def error_of(tmp_path: Path, text: str, **files: str) -> str:
    with pytest.raises(SpecError) as info:
        spec_of(tmp_path, text, **files)
    return info.value.message


def entry_error(spec: ProjectSpec, name: str) -> str:
    with pytest.raises(SpecError) as info:
        get_entry_point(spec, name)
    return info.value.message


# --- MLflow-compatible records ---------------------------------------------------------------


def test_example_project_loads(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, EXAMPLE)
    assert spec.name == "example"
    assert spec.root == tmp_path.resolve()
    assert spec.spec_file == tmp_path.resolve() / "MLproject"
    assert spec.env == EnvSpec(kind="system")
    assert [e.name for e in spec.entry_points] == [
        "greeter", "line_count", "download_uri", "sleep", "main",
    ]  # fmt: skip
    assert get_entry_point(spec, "greeter") == EntryPoint(
        "greeter",
        "python greeter.py {greeting} {name}",
        (Parameter("greeting", "string", "hi"), Parameter("name", "string", None)),
    )


def test_parameter_forms(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        """
        entry_points:
          main:
            parameters:
              a: float
              b: {type: int, default: null}
              c: {default: 5}
              d: {type: int}
              e: {type: action, default: go}
            command: x {a} {b} {c} {d} {e}
        """,
    )
    assert spec.entry_points[0].parameters == (
        Parameter("a", "float", None),
        Parameter("b", "int", None),
        Parameter("c", "string", "5"),
        Parameter("d", "int", None),
        Parameter("e", "action", "go"),
    )


def test_defaults_are_rendered_as_mlflow_renders_the_yaml_value(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        """
        entry_points:
          main:
            parameters:
              version: {type: string, default: 1.10}
              quoted: {type: string, default: '1.10'}
              flag: {type: bool, default: no}
              off: {type: bool, default: false}
              lr: {type: float, default: 1e-1}
              momentum: {type: float, default: .0}
              half: {type: float, default: .5}
              small: {type: float, default: 1.0e-5}
              hex: {type: int, default: 0x10}
              text: {default: 'a b'}
            command: x
        """,
    )
    defaults = {p.name: p.default for p in spec.entry_points[0].parameters}
    # str() of what yaml.safe_load gives, as MLflow's Parameter passes it (1e-1 is a string in
    # YAML 1.1: a float needs a dot)
    assert defaults == {
        "version": "1.1", "quoted": "1.10", "flag": "False", "off": "False", "lr": "1e-1",
        "momentum": "0.0", "half": "0.5", "small": "1e-05", "hex": "16", "text": "a b",
    }  # fmt: skip


def test_rendered_defaults_survive_the_spec_cache(tmp_path: Path, runner_home: Path) -> None:
    text = "entry_points:\n  main:\n    parameters:\n      m: {type: float, default: .0}\n"
    text += "    command: x {m}\n"
    first = spec_of(tmp_path, text)
    assert len(list((runner_home / "cache" / "spec").glob("*.json"))) == 1
    again = spec_of(tmp_path, text)  # the second load comes from the validated-document cache
    assert first.entry_points[0].parameters == again.entry_points[0].parameters
    assert again.entry_points[0].parameters[0].default == "0.0"


def test_anchors_and_merge_keys_share_parameters(tmp_path: Path) -> None:
    text = """
        entry_points:
          a:
            parameters: &common
              lr: {type: float, default: 0.10}
            command: x {lr}
          b:
            parameters: {<<: *common, n: int}
            command: y {lr} {n}
        """
    loaded = spec_of(tmp_path, text)
    assert loaded.entry_points[0].parameters == (Parameter("lr", "float", "0.1"),)
    assert loaded.entry_points[1].parameters == (
        Parameter("lr", "float", "0.1"),
        Parameter("n", "int", None),
    )


def test_numeric_name_keeps_its_text(tmp_path: Path) -> None:
    assert spec_of(tmp_path, "name: 1.10\n").name == "1.10"


def test_databricks_spark_job_is_accepted_and_ignored(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, "name: x\ndatabricks_spark_job: {python_file: a.py}\n")
    assert spec.entry_points == ()


def test_crlf_and_bom_load_like_lf(tmp_path: Path) -> None:
    text = "\ufeff" + textwrap.dedent(EXAMPLE).replace("\n", "\r\n")
    (tmp_path / "MLproject").write_bytes(text.encode())
    assert load_spec(tmp_path).entry_points == spec_of(tmp_path, EXAMPLE).entry_points


# --- finding the file ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["MLproject", "mlproject", "MLProject"])
def test_file_name_is_case_insensitive(tmp_path: Path, name: str) -> None:
    spec = load_spec(project(tmp_path, "name: x\n", name=name))
    assert spec.spec_file == tmp_path.resolve() / name


def test_first_sorted_name_wins(tmp_path: Path) -> None:
    project(tmp_path, "name: upper\n", name="MLproject")
    project(tmp_path, "name: lower\n", name="mlproject")
    if len(os.listdir(tmp_path)) < 2:
        pytest.skip("case-insensitive filesystem")
    assert load_spec(tmp_path).name == "upper"


def test_mlproject_yaml_is_refused_with_a_hint(tmp_path: Path) -> None:
    project(tmp_path, "name: x\n", name="MLproject.yaml")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert info.value.message == (
        "found MLproject.yaml, but the project file must be named exactly 'MLproject'"
    )
    assert (
        info.value.hint == "rename MLproject.yaml to MLproject (MLflow ignores MLproject.yaml too)"
    )


def test_mlproject_yaml_is_ignored_next_to_a_real_mlproject(tmp_path: Path) -> None:
    project(tmp_path, "name: other\n", name="MLproject.yaml")
    assert spec_of(tmp_path, "name: real\n").name == "real"


def test_mlproject_link_outside_the_project_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("name: x\n")
    root = tmp_path / "proj"
    root.mkdir()
    (root / "MLproject").symlink_to(outside)
    with pytest.raises(SpecError) as info:
        load_spec(root)
    assert info.value.message == (
        f"MLproject is a link to {outside.resolve()}, outside the project: refused"
    )


def test_mlproject_link_inside_the_project_is_read(tmp_path: Path) -> None:
    project(tmp_path, "name: linked\n", name="real.yaml")
    (tmp_path / "MLproject").symlink_to("real.yaml")
    assert load_spec(tmp_path).name == "linked"


def test_an_mlproject_directory_is_refused_saying_so(tmp_path: Path) -> None:
    (tmp_path / "MLproject").mkdir()
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert info.value.message == "MLproject is a directory, not a file: refused"


def test_a_directory_named_like_mlproject_is_a_package_not_the_spec(tmp_path: Path) -> None:
    (tmp_path / "mlproject").mkdir()
    assert load_spec(tmp_path).spec_file is None
    project(tmp_path, "name: real\n", name="MLPROJECT")
    assert load_spec(tmp_path).name == "real"


def test_missing_project_directory(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope")
    assert info.value.message == f"project directory {tmp_path.resolve() / 'nope'} does not exist"


# --- environments ----------------------------------------------------------------------------


def test_no_mlproject_uses_implicit_env_files(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    spec = load_spec(tmp_path)
    assert spec == ProjectSpec(root=tmp_path.resolve(), name=None, env=EnvSpec(kind="system"))
    (tmp_path / "conda.yaml").write_text("name: x\n")
    assert load_spec(tmp_path).env == EnvSpec("conda_env", tmp_path.resolve() / "conda.yaml")
    (tmp_path / "python_env.yaml").write_text("python: '3.11'\n")
    assert load_spec(tmp_path).env == EnvSpec("python_env", tmp_path.resolve() / "python_env.yaml")


def test_implicit_env_files_apply_with_an_mlproject_too(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, "name: x\n", **{"conda.yaml": "name: x\n"})
    assert spec.env == EnvSpec("conda_env", tmp_path.resolve() / "conda.yaml")


@pytest.mark.parametrize(
    ("key", "kind"), [("python_env", "python_env"), ("conda_env", "conda_env")]
)
def test_explicit_env_file(tmp_path: Path, key: str, kind: str) -> None:
    (tmp_path / "envs").mkdir()
    spec = spec_of(tmp_path, f"{key}: envs/e.yaml\n", **{"envs/e.yaml": "x: 1\n"})
    assert spec.env == EnvSpec(kind, tmp_path.resolve() / "envs" / "e.yaml")  # type: ignore[arg-type]


def test_missing_python_env_file(tmp_path: Path) -> None:
    assert error_of(tmp_path, "python_env: missing.yaml\n") == (
        "MLproject:1:1 python_env: Project specified python_env file "
        f"{tmp_path.resolve() / 'missing.yaml'}, but no such file was found."
    )


def test_missing_conda_env_file(tmp_path: Path) -> None:
    assert error_of(tmp_path, "name: x\nconda_env: missing.yaml\n") == (
        "MLproject:2:1 conda_env: Project specified conda environment file "
        f"{tmp_path.resolve() / 'missing.yaml'}, but no such file was found."
    )


def test_env_file_outside_the_project(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (tmp_path / "env.yaml").write_text("x: 1\n")
    with pytest.raises(SpecError) as info:
        load_spec(project(root, "python_env: ../env.yaml\n"))
    assert info.value.message == (
        "MLproject:1:1 python_env: python_env file '../env.yaml' is outside the project: refused"
    )


def test_env_file_through_a_dir_linked_out_of_the_project(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (tmp_path / "env.yaml").write_text("x: 1\n")
    (root / "envs").symlink_to(tmp_path)
    assert error_of(root, "python_env: envs/env.yaml\n") == (
        "MLproject:1:1 python_env: python_env file 'envs/env.yaml' is a link to "
        f"{(tmp_path / 'env.yaml').resolve()}, outside the project: refused"
    )


def test_an_env_file_that_is_a_fifo_is_refused_at_load(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "env.yaml")
    assert error_of(tmp_path, "python_env: env.yaml\n") == (
        "MLproject:1:1 python_env: python_env file 'env.yaml' is a named pipe (FIFO), not a "
        "file: refused"
    )


def test_an_implicit_env_file_linked_out_is_refused_not_skipped(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (tmp_path / "conda.yaml").write_text("name: x\n")
    (root / "conda.yaml").symlink_to(tmp_path / "conda.yaml")
    with pytest.raises(SpecError) as info:
        load_spec(root)
    assert info.value.message == (
        f"conda.yaml is a link to {(tmp_path / 'conda.yaml').resolve()}, outside the project: "
        "refused"
    )


def test_empty_env_key_counts_as_absent(tmp_path: Path) -> None:
    assert spec_of(tmp_path, "conda_env: ''\n").env == EnvSpec("system")


def test_multiple_environment_fields(tmp_path: Path) -> None:
    text = "docker_env: {image: x}\nconda_env: c.yaml\npython_env: p.yaml\n"
    assert error_of(tmp_path, text) == (
        "MLproject:3:1 python_env: Project cannot contain multiple environment fields: "
        "'conda_env', 'docker_env', 'python_env'"
    )


def test_docker_env_records(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        """
        docker_env:
          image: repo/img:1
          volumes: ["/data:/data"]
          environment: [HOME_VAR, [PORT, 8080], [NAME, "a b"]]
          build:
            context: docker
            dockerfile: Dockerfile.gpu
            args: {CUDA: 12.0, FLAG: yes}
        """,
    )
    assert spec.env == EnvSpec(
        kind="docker_env",
        docker=DockerEnv(
            image="repo/img:1",
            volumes=("/data:/data",),
            environment=(("HOME_VAR", None), ("PORT", "8080"), ("NAME", "a b")),
            build=DockerBuild("docker", "Dockerfile.gpu", (("CUDA", "12.0"), ("FLAG", "yes"))),
        ),
    )


def test_docker_build_defaults(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, "docker_env: {image: x, build: {}}\n")
    assert spec.env.docker == DockerEnv("x", build=DockerBuild(".", "Dockerfile", ()))


def test_docker_env_without_image(tmp_path: Path) -> None:
    message = "Docker environment specified but no image attribute found"
    assert (
        error_of(tmp_path, "docker_env: {volumes: []}\n") == f"MLproject:1:1 docker_env: {message}"
    )
    assert error_of(tmp_path, "docker_env: {image: ''}\n") == (
        f"MLproject:1:14 docker_env.image: {message}"
    )


def test_docker_volumes_must_be_a_list_of_strings(tmp_path: Path) -> None:
    message = (
        "MLproject:1:24 docker_env.volumes: Docker volumes must be a list of strings, "
        'e.g.: \'["/path1/:/path1", "/path2/:/path2"]\''
    )
    assert error_of(tmp_path, "docker_env: {image: x, volumes: /a:/b}\n") == message
    assert error_of(tmp_path, "docker_env: {image: x, volumes: [1]}\n") == message.replace(
        "1:24 docker_env.volumes", "1:34 docker_env.volumes[0]"
    )


@pytest.mark.parametrize(
    ("value", "where"),
    [("{A: b}", "1:24 docker_env.environment"), ("[[A]]", "1:38 docker_env.environment[0]")],
)
def test_docker_environment_shape(tmp_path: Path, value: str, where: str) -> None:
    assert error_of(tmp_path, f"docker_env: {{image: x, environment: {value}}}\n") == (
        f"MLproject:{where}: Docker environment must be a list containing either strings (to "
        "copy environment variables from host system) or lists of string pairs [NAME, VALUE]"
    )


def test_docker_build_context_must_stay_inside(tmp_path: Path) -> None:
    text = "docker_env:\n  image: x\n  build: {context: .., dockerfile: D}\n"
    assert error_of(tmp_path, text) == (
        "MLproject:3:11 docker_env.build.context: build context '..' is outside the project: "
        "refused"
    )
    text = "docker_env:\n  image: x\n  build: {dockerfile: ../../D}\n"
    assert error_of(tmp_path, text) == (
        "MLproject:3:11 docker_env.build.dockerfile: dockerfile '../../D' is outside the "
        "project: refused"
    )


# --- malformed specs -------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    assert error_of(tmp_path, "") == "MLproject:1:1: the file is empty"


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert error_of(tmp_path, "- a\n") == "MLproject:1:1: expected a mapping, got a list"


def test_entry_points_as_a_list(tmp_path: Path) -> None:
    assert error_of(tmp_path, "entry_points: []\n") == (
        "MLproject:1:1 entry_points: expected a mapping, got a list"
    )


def test_entry_point_without_command(tmp_path: Path) -> None:
    assert error_of(tmp_path, "entry_points:\n  main:\n    parameters: {a: int}\n") == (
        "MLproject:2:3 entry_points.main: missing required key 'command'"
    )


def test_entry_point_with_null_body(tmp_path: Path) -> None:
    assert error_of(tmp_path, "entry_points:\n  main:\n") == (
        "MLproject:2:3 entry_points.main: expected a mapping, got null"
    )


def test_command_must_be_a_string(tmp_path: Path) -> None:
    assert error_of(tmp_path, "entry_points:\n  main:\n    command: 42\n") == (
        "MLproject:3:5 entry_points.main.command: expected a string, got a number"
    )


def test_empty_command(tmp_path: Path) -> None:
    assert error_of(tmp_path, "entry_points:\n  main:\n    command: ''\n") == (
        "MLproject:3:5 entry_points.main.command: must not be empty"
    )


def test_unknown_keys_suggest_the_closest_name(tmp_path: Path) -> None:
    assert error_of(tmp_path, "name: x\nentrypoints: {}\n") == (
        "MLproject:2:1 entrypoints: unknown key 'entrypoints' (did you mean 'entry_points'?)"
    )


def test_unknown_key_without_a_close_match(tmp_path: Path) -> None:
    assert error_of(tmp_path, "zzz: 1\n") == "MLproject:1:1 zzz: unknown key 'zzz'"


def test_unknown_parameter_field_is_a_warning_with_a_hint(tmp_path: Path) -> None:
    text = "entry_points:\n  main:\n    parameters:\n      lr: {tpye: float}\n    command: x\n"
    spec = spec_of(tmp_path, text)
    assert spec.warnings == (
        "MLproject:4:12 entry_points.main.parameters.lr.tpye: unknown key 'tpye' ignored, "
        "as MLflow ignores it (did you mean 'type'?)",
    )
    # as in MLflow, the misspelt type is not used: the parameter is a required string
    assert spec.entry_points[0].parameters == (Parameter("lr", "string", None),)


def test_type_without_a_colon_runs_as_a_string_as_in_mlflow(tmp_path: Path) -> None:
    # a real MLflow example (pytorch/MNIST): YAML reads `type str` as one key with no value
    text = """
        entry_points:
          main:
            parameters:
              strategy: {type str, default: "auto"}
            command: python train.py --strategy {strategy}
        """
    spec = spec_of(tmp_path, text)
    assert spec.entry_points[0].parameters == (Parameter("strategy", "string", "auto"),)
    assert spec.warnings == (
        "MLproject:5:18 entry_points.main.parameters.strategy.type str: unknown key 'type str' "
        "ignored, as MLflow ignores it (did you mean 'type'?)",
    )


def test_unknown_entry_point_keys_are_warnings_in_file_order(tmp_path: Path) -> None:
    text = """
        entry_points:
          main:
            description: trains
            parameters:
              n: {type: int, default: 1, help: how many}
            command: x {n}
        """
    spec = spec_of(tmp_path, text)
    assert spec.warnings == (
        "MLproject:4:5 entry_points.main.description: unknown key 'description' ignored, "
        "as MLflow ignores it",
        "MLproject:6:34 entry_points.main.parameters.n.help: unknown key 'help' ignored, "
        "as MLflow ignores it",
    )
    assert spec.entry_points[0].command == "x {n}"


def test_warnings_are_the_same_when_the_document_comes_from_the_cache(tmp_path: Path) -> None:
    text = "entry_points:\n  main:\n    comand: y\n    command: x\n"
    assert (
        spec_of(tmp_path, text).warnings
        == spec_of(tmp_path, text).warnings
        == (
            "MLproject:3:5 entry_points.main.comand: unknown key 'comand' ignored, as MLflow "
            "ignores it (did you mean 'command'?)",
        )
    )


def test_known_keys_are_the_schemas_properties() -> None:
    schema = json.loads(runner.project.spec.schema_path("mlproject.schema.json").read_text())
    defs = schema["$defs"]
    assert tuple(defs["entryPoint"]["properties"]) == runner.project.spec.ENTRY_POINT_KEYS
    assert tuple(defs["parameter"]["properties"]) == runner.project.spec.PARAMETER_KEYS


def test_parameter_must_be_a_type_name_or_mapping(tmp_path: Path) -> None:
    text = "entry_points:\n  main:\n    parameters:\n      lr: [float]\n    command: x\n"
    assert error_of(tmp_path, text) == (
        "MLproject:4:7 entry_points.main.parameters.lr: expected a string or a mapping, got a list"
    )


def test_default_must_fit_the_declared_type(tmp_path: Path) -> None:
    text = """
        entry_points:
          main:
            parameters:
              lr: {type: float, default: abc}
              n: {type: int, default: 1.5}
              u: {type: uri, default: /tmp/x}
              ok: {type: float, default: 1e-05}
            command: x
        """
    assert error_of(tmp_path, text) == "\n".join(
        [
            "MLproject:5:25 entry_points.main.parameters.lr.default: "
            "default 'abc' for parameter 'lr' is not a valid float",
            "MLproject:6:22 entry_points.main.parameters.n.default: "
            "default '1.5' for parameter 'n' is not a valid int",
            "MLproject:7:22 entry_points.main.parameters.u.default: "
            "default '/tmp/x' for parameter 'u' is not a valid uri",
        ]
    )


def test_all_schema_errors_at_once_sorted_by_location(tmp_path: Path) -> None:
    text = """
        name: x
        entry_points:
          b:
            command: 42
          a:
            comand: x
        docker_env: {volumes: [1]}
        entrypoints: {}
        """
    assert error_of(tmp_path, text) == "\n".join(
        [
            "MLproject:5:5 entry_points.b.command: expected a string, got a number",
            "MLproject:6:3 entry_points.a: missing required key 'command'",
            "MLproject:8:1 docker_env: Docker environment specified but no image attribute found",
            "MLproject:8:24 docker_env.volumes[0]: Docker volumes must be a list of strings, "
            'e.g.: \'["/path1/:/path1", "/path2/:/path2"]\'',
            "MLproject:9:1 entrypoints: unknown key 'entrypoints' (did you mean 'entry_points'?)",
        ]
    )


def test_spec_error_hint_points_at_the_schema(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        spec_of(tmp_path, "zzz: 1\n")
    assert info.value.hint == "`runner spec schema` prints the MLproject format (a JSON Schema)"


def test_yaml_problems_surface_with_the_file_name(tmp_path: Path) -> None:
    text = "entry_points:\n  main:\n    command: a\n    command: b\n"
    assert error_of(tmp_path, text) == "MLproject:4:5: duplicate key 'command' (first at 3:5)"
    assert error_of(tmp_path, "a: !!python/object/new:os.system [ls]\n") == (
        "MLproject:1:4: unsupported YAML tag '!!python/object/new:os.system'"
    )


def test_oversized_mlproject(tmp_path: Path) -> None:
    (tmp_path / "MLproject").write_bytes(b"#" * 1_000_001)
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path)
    assert info.value.message == "MLproject exceeds size limit (1000001 bytes > 1000000 bytes)"


# --- command templates -----------------------------------------------------------------------


def test_command_placeholders_are_checked_at_load_time(tmp_path: Path) -> None:
    text = """
        entry_points:
          main:
            parameters: {code: string}
            command: python -c '{code}' {0} {nope} {code.x} {code!r}
          other:
            command: echo {code}
        """
    assert error_of(tmp_path, text) == "\n".join(
        [
            "MLproject:5:5 entry_points.main.command: positional placeholder {0} is not allowed; "
            "use a parameter name",
            "MLproject:5:5 entry_points.main.command: placeholder {nope} is not a declared "
            "parameter of this entry point",
            "MLproject:5:5 entry_points.main.command: placeholder {code.x} uses attribute or "
            "index access, which is not allowed",
            "MLproject:5:5 entry_points.main.command: placeholder {code!r} uses a conversion or "
            "format spec, which is not allowed",
            "MLproject:7:5 entry_points.other.command: placeholder {code} is not a declared "
            "parameter of this entry point",
        ]
    )


def test_multiline_commands_with_comments_are_fine(tmp_path: Path) -> None:
    text = """
        entry_points:
          main:
            parameters: {a: string}
            command: |
              # don't quote {a}
              echo {a} "{{literal}}"
        """
    assert spec_of(tmp_path, text).entry_points[0].command == (
        '# don\'t quote {a}\necho {a} "{{literal}}"\n'
    )


# --- entry point lookup ----------------------------------------------------------------------


def test_script_entry_points(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "my script.py").write_text("")
    (tmp_path / "run.sh").write_text("")
    spec = spec_of(tmp_path, EXAMPLE)
    assert get_entry_point(spec, "src/my script.py") == EntryPoint(
        "src/my script.py", "python 'src/my script.py'"
    )
    assert get_entry_point(spec, "run.sh") == EntryPoint("run.sh", "bash run.sh")


def test_script_name_is_never_read_as_an_option(tmp_path: Path) -> None:
    (tmp_path / "-c.py").write_text("")
    assert get_entry_point(load_spec(tmp_path), "-c.py").command == "python ./-c.py"


def test_no_mlproject_script_entry_point(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("")
    assert get_entry_point(load_spec(tmp_path), "train.py") == EntryPoint(
        "train.py", "python train.py"
    )


def test_no_mlproject_and_no_entry_point(tmp_path: Path) -> None:
    assert entry_error(load_spec(tmp_path), "main") == (
        "Could not find main among entry points [] or interpret main as a runnable script. "
        "Supported script file extensions: ['.py', '.sh']"
    )


def test_unsupported_script_extension(tmp_path: Path) -> None:
    spec = spec_of(tmp_path, "entry_points:\n  main: {command: a}\n  train: {command: b}\n")
    with pytest.raises(SpecError) as info:
        get_entry_point(spec, "my_program.scala")
    assert info.value.message == (
        "Could not find my_program.scala among entry points ['main', 'train'] or interpret "
        "my_program.scala as a runnable script. Supported script file extensions: ['.py', '.sh']"
    )
    assert info.value.hint == (
        "declare it under entry_points in MLproject, or pass a .py or .sh script path"
    )


def test_script_outside_the_project(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b"
    root.mkdir(parents=True)
    (tmp_path / "x.py").write_text("")
    spec = load_spec(root)
    assert entry_error(spec, "../../x.py") == (
        "entry point '../../x.py' is outside the project: refused"
    )
    assert entry_error(spec, str(tmp_path / "x.py")) == (
        f"entry point '{tmp_path / 'x.py'}' is outside the project: refused"
    )


def test_script_link_leaving_the_project(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (tmp_path / "evil.sh").write_text("")
    (root / "run.sh").symlink_to(tmp_path / "evil.sh")
    assert entry_error(load_spec(root), "run.sh") == (
        f"entry point 'run.sh' is a link to {(tmp_path / 'evil.sh').resolve()}, outside the "
        "project: refused"
    )


def test_missing_script(tmp_path: Path) -> None:
    assert entry_error(load_spec(tmp_path), "train.py") == (
        f"entry point script 'train.py' was not found in the project {tmp_path.resolve()}"
    )


# --- the validation cache --------------------------------------------------------------------


def cache_dir(home: Path) -> Path:
    return home / "cache" / "spec"


def test_valid_spec_is_cached_and_revalidation_skipped(
    tmp_path: Path, runner_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = spec_of(tmp_path, EXAMPLE)
    assert len(list(cache_dir(runner_home).iterdir())) == 1

    def no_validation(*args: Any) -> Any:
        raise AssertionError("jsonschema should not run on a cache hit")

    monkeypatch.setattr(runner.project.spec, "_validate", no_validation)
    monkeypatch.setattr(runner.project.yamlsafe, "parse_yaml", no_validation)
    assert load_spec(tmp_path) == spec


def test_cached_documents_keep_marks_for_semantic_errors(tmp_path: Path) -> None:
    """A cache hit skips parsing; a later semantic error still names line:column."""
    (tmp_path / "env.yaml").write_text("python: '3.11'\n")
    mlproject = "name: x\npython_env: env.yaml\nentry_points:\n  main: {command: 'true'}\n"
    spec_of(tmp_path, mlproject)
    (tmp_path / "env.yaml").unlink()
    message = error_of(tmp_path, mlproject)
    assert message.startswith("MLproject:2:")
    assert "no such file was found" in message


def test_changed_spec_is_validated_again(tmp_path: Path, runner_home: Path) -> None:
    spec_of(tmp_path, EXAMPLE)
    assert error_of(tmp_path, EXAMPLE + "zzz: 1\n").endswith("unknown key 'zzz'")
    assert len(list(cache_dir(runner_home).iterdir())) == 1


def test_invalid_spec_is_not_cached(tmp_path: Path, runner_home: Path) -> None:
    error_of(tmp_path, "zzz: 1\n")
    assert not cache_dir(runner_home).exists()


def test_cache_write_failure_never_fails_the_load(tmp_path: Path, runner_home: Path) -> None:
    (runner_home / "cache").write_text("not a directory")
    assert spec_of(tmp_path, EXAMPLE).name == "example"


def test_unusable_runner_home_never_fails_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home_file = tmp_path / "home-is-a-file"
    home_file.write_text("")
    monkeypatch.setenv("RUNNER_HOME", str(home_file))
    assert spec_of(tmp_path, EXAMPLE).name == "example"


def test_cache_hit_does_not_import_jsonschema(tmp_path: Path) -> None:
    project(tmp_path, EXAMPLE)
    script = (
        "import sys; from pathlib import Path; from runner.project.spec import load_spec; "
        f"load_spec(Path({str(tmp_path)!r})); print('jsonschema' in sys.modules)"
    )
    runs = [
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    assert [run.stdout.strip() for run in runs] == ["True", "False"]


def test_importing_spec_stays_light() -> None:
    script = (
        "import sys, runner.project.spec, runner.project.params, runner.project.yamlsafe; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jsonschema', 'rich')))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.stdout.strip() == "[]"


# --- the schema itself -----------------------------------------------------------------------


def test_schema_is_valid_and_documents_every_property() -> None:
    from jsonschema import Draft202012Validator

    schema = json.loads(runner.project.spec._schema_path().read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is False

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                assert "description" in sub, f"{where}.{name} has no description"
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for index, sub in enumerate(node):
                walk(sub, f"{where}[{index}]")

    walk(schema, "$")
