"""conda.yaml reading, activation files, channel credentials, conda-lock.yml and relocation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.envs.conda import activation
from runner.envs.conda.channels import channel_url, redact, secrets_of, with_credentials
from runner.envs.conda.condalock import read_committed, render
from runner.envs.conda.envfile import read_conda_file
from runner.envs.conda.install import _binary_replace, relocate_prefix
from runner.envs.conda.lockdata import CondaLock, CondaPackage, PipPackage, parse_lock
from runner.errors import SpecError
from tests.helpers import write_project

PACKAGE = CondaPackage(
    name="hello",
    version="2.0",
    build="0",
    build_number=3,
    subdir="noarch",
    noarch="python",
    depends=("greeting >=1", "python >=3.8"),
    url="https://conda.example.invalid/chan/noarch/hello-2.0-0.tar.bz2",
    md5="a" * 32,
    sha256="b" * 64,
)
PIP = PipPackage(
    "six", "1.16.0", "https://files.example.invalid/six-1.16.0-py3-none-any.whl", "c" * 64
)
LOCK = CondaLock("linux-64", ("https://conda.example.invalid/chan",), (PACKAGE,), (PIP,))


def conda_file(tmp_path: Path, text: str, **files: str) -> Path:
    write_project(tmp_path, {"conda.yaml": text, **files})
    return tmp_path / "conda.yaml"


def test_a_conda_file_gives_channels_specs_pip_and_variables(tmp_path: Path) -> None:
    path = conda_file(
        tmp_path,
        """
        name: x
        channels: [conda-forge, ./local]
        dependencies:
          - python=3.11
          - numpy>=1.20
          - 3.5
          - pip:
              - six==1.16.0
              - -r requirements.txt
        variables: {B: two, A: 1}
        """,
        **{"requirements.txt": "idna==3.7\n--index-url https://pkgs.example.invalid/simple\n"},
    )
    spec = read_conda_file(path, tmp_path)
    assert spec.channels == ("conda-forge", "./local")
    assert spec.specs == ("python=3.11", "numpy>=1.20", "3.5", "pip")  # pip added for pip:
    assert spec.pip == ("six==1.16.0", "idna==3.7")
    assert spec.pip_options == ("--index-url https://pkgs.example.invalid/simple",)
    assert spec.variables == (("A", "1"), ("B", "two"))


def test_no_channels_means_conda_forge_and_the_digest_follows_the_content(tmp_path: Path) -> None:
    first = read_conda_file(conda_file(tmp_path, "dependencies: [python]\n"), tmp_path)
    commented = read_conda_file(conda_file(tmp_path, "# note\ndependencies: [python]\n"), tmp_path)
    other = read_conda_file(conda_file(tmp_path, "dependencies: [python=3.12]\n"), tmp_path)
    assert first.channels == ("conda-forge",)
    assert first.digest() == commented.digest() != other.digest()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- python\n", "conda.yaml: must be a mapping with channels and dependencies"),
        ("channels: conda-forge\n", "conda.yaml: channels must be a list of channel names or URLs"),
        ("dependencies: {python: 3}\n", "conda.yaml: dependencies must be a list"),
        (
            "dependencies: [{conda: [x]}]\n",
            "conda.yaml: invalid conda dependency: {'conda': ['x']}. Must be a string or "
            "a mapping of the form {pip: [...]}",
        ),
        ("dependencies: ['--force']\n", "conda.yaml: invalid conda match spec '--force'"),
        (
            "dependencies: [{pip: six}]\n",
            "conda.yaml: the pip section must be a list of requirement strings",
        ),
        ("variables: {'1x': y}\n", "conda.yaml: variables must map variable names to values"),
    ],
)
def test_invalid_conda_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError) as err:
        read_conda_file(conda_file(tmp_path, text), tmp_path)
    assert err.value.message == message


def test_channels_become_urls_relative_to_the_project(tmp_path: Path) -> None:
    assert channel_url("conda-forge", tmp_path) == "conda-forge"
    assert channel_url("./chan", tmp_path) == (tmp_path / "chan").as_uri()
    assert channel_url("file:///srv/chan/", tmp_path) == "file:///srv/chan"


def test_credentials_are_redacted_and_restored_only_for_downloads() -> None:
    private = "https://user:s3cret@conda.example.invalid:8443/t/tk-123/chan"
    assert redact(private) == "https://conda.example.invalid:8443/chan"
    secrets = secrets_of([private, "conda-forge", "file:///srv/chan"])
    assert secrets == {"https://conda.example.invalid:8443/chan": private}
    url = "https://conda.example.invalid:8443/chan/noarch/x-1-0.conda"
    assert with_credentials(url, secrets) == private + "/noarch/x-1-0.conda"
    assert with_credentials("file:///srv/chan/noarch/y.conda", secrets).startswith("file://")


def test_activation_takes_export_only_scripts_and_json_files(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "etc/conda/activate.d/a.sh": "# c\nexport A='lit$ral'\nexport B=$CONDA_PREFIX/b\n",
            "etc/conda/activate.d/b.sh": 'export C="${CONDA_PREFIX}/c"\n',
            "etc/conda/activate.d/c.sh": "export D=1\nsource other.sh\n",
            "etc/conda/activate.d/d.sh": 'export E="$HOME/x"\n',
            "etc/conda/env_vars.d/e.json": '{"F": "from json"}',
        },
    )
    found, skipped = activation.collect(tmp_path, [("G", "from conda.yaml"), ("A", "wins")])
    assert skipped == ["etc/conda/activate.d/c.sh", "etc/conda/activate.d/d.sh"]
    activation.write_activation(tmp_path, found)
    final = Path("/envs/final")
    (tmp_path / "moved").mkdir()
    (tmp_path / activation.ACTIVATION_FILE).rename(tmp_path / "moved" / activation.ACTIVATION_FILE)
    assert activation.read_activation(tmp_path / "moved") == {
        "A": "wins",
        "B": f"{tmp_path / 'moved'}/b",
        "C": f"{tmp_path / 'moved'}/c",
        "F": "from json",
        "G": "from conda.yaml",
    }
    assert activation.expand("'lit$$ral' ${CONDA_PREFIX}", final) == "'lit$ral' /envs/final"


def test_the_lock_text_is_canonical_and_parses_back() -> None:
    reordered = CondaLock("linux-64", LOCK.channels, (PACKAGE,), (PIP,))
    assert LOCK.text() == reordered.text()
    assert parse_lock(LOCK.text()) == LOCK
    assert LOCK.packages() == ("hello=2.0=0", "six==1.16.0")


def test_conda_lock_yml_round_trips_for_this_platform(tmp_path: Path) -> None:
    (tmp_path / "conda-lock.yml").write_text(render(LOCK, "d" * 64, "conda.yaml"))
    committed = read_committed(tmp_path, "linux-64", ())
    assert committed is not None
    assert committed.lock == LOCK and committed.inputs == "d" * 64


def test_a_lock_written_by_conda_lock_itself_is_read(tmp_path: Path) -> None:
    document = {
        "version": 1,
        "metadata": {
            "content_hash": {"linux-64": "x"},
            "channels": [{"url": "conda-forge", "used_env_vars": []}],
            "platforms": ["linux-64"],
            "sources": ["environment.yml"],
        },
        "package": [
            {
                "name": "hello",
                "version": "2.0",
                "manager": "conda",
                "platform": "linux-64",
                "dependencies": {"python": ">=3.8"},
                "url": "https://conda.example.invalid/chan/noarch/hello-2.0-pyh0_0.conda",
                "hash": {"md5": "a" * 32, "sha256": "b" * 64},
                "category": "main",
                "optional": False,
            },
            {
                "name": "dev-only",
                "version": "1",
                "manager": "conda",
                "platform": "linux-64",
                "url": "https://conda.example.invalid/chan/noarch/dev-only-1-0.conda",
                "hash": {"md5": "a" * 32, "sha256": "b" * 64},
                "category": "dev",
                "optional": True,
            },
        ],
    }
    (tmp_path / "conda-lock.yml").write_text(json.dumps(document))
    committed = read_committed(tmp_path, "linux-64", ())
    assert committed is not None and committed.inputs is None
    (package,) = committed.lock.conda
    assert (package.build, package.noarch, package.depends) == (
        "pyh0_0",
        "python",
        ("python >=3.8",),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 7\n", "conda-lock.yml: not a conda-lock file of version 1 or 2"),
        (
            "version: 1\nmetadata: {channels: []}\npackage: [{platform: linux-64}]\n",
            "conda-lock.yml: malformed entry (KeyError('manager'))",
        ),
    ],
)
def test_a_bad_committed_lock_is_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "conda-lock.yml").write_text(text)
    with pytest.raises(SpecError) as err:
        read_committed(tmp_path, "linux-64", ())
    assert err.value.message == message


def test_binary_prefixes_are_replaced_inside_their_string_and_padded() -> None:
    data = b"\x7fELF..../tmp/.tmp-abc-1234/lib/x.so\0rest/tmp/.tmp-abc-1234\0"
    patched = _binary_replace(data, b"/tmp/.tmp-abc-1234", b"/tmp/abc")
    assert len(patched) == len(data)
    assert patched == b"\x7fELF..../tmp/abc/lib/x.so" + b"\0" * 11 + b"rest/tmp/abc" + b"\0" * 11


def test_relocation_rewrites_placeholder_files_without_touching_the_cache(tmp_path: Path) -> None:
    prefix, final = tmp_path / ".tmp-env-1234", tmp_path / "env"
    cached = tmp_path / "pkgs" / "script"
    cached.parent.mkdir()
    cached.write_text(f"#!{prefix}/bin/python\n")
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "script").hardlink_to(cached)
    meta = {"paths_data": {"paths": [{"_path": "bin/script", "prefix_placeholder": "/opt/x"}]}}
    (prefix / "conda-meta").mkdir()
    (prefix / "conda-meta" / "s-1-0.json").write_text(json.dumps(meta))
    relocate_prefix(prefix, final)
    assert (prefix / "bin" / "script").read_text() == f"#!{final}/bin/python\n"
    assert cached.read_text() == f"#!{prefix}/bin/python\n"  # the hard link was broken first


def test_the_defaults_channel_is_configured_or_read_as_conda_forge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = conda_file(tmp_path, "channels: [defaults, bioconda, conda-forge]\n")
    monkeypatch.delenv("RUNNER_CONDA_DEFAULT_CHANNELS", raising=False)
    plain = read_conda_file(path, tmp_path)
    assert plain.channels == ("conda-forge", "bioconda")
    assert plain.warnings == (
        "conda.yaml: the 'defaults' channel is read as conda-forge "
        "(set RUNNER_CONDA_DEFAULT_CHANNELS to the channels your conda's defaults name)",
    )
    monkeypatch.setenv("RUNNER_CONDA_DEFAULT_CHANNELS", "file:///srv/main, file:///srv/r")
    configured = read_conda_file(path, tmp_path)
    assert configured.channels == ("file:///srv/main", "file:///srv/r", "bioconda", "conda-forge")
    assert configured.warnings == () and configured.digest() != plain.digest()
