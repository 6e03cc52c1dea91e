"""No Docker mount exposes a container runtime's socket or state, however its path is spelled."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.docker.policy import Mount, check_mount, docker_sockets, parse_volume
from runner.errors import BackendError

DOCKER_HINT = "a container that reaches the Docker socket controls the host"
RUNTIME_HINT = "a container that reaches a container runtime controls the host"
RUNTIME_DIRS = [
    "/run/docker", "/var/run/docker", "/var/lib/docker", "/run/containerd", "/var/run/containerd",
    "/var/lib/containerd", "/run/podman", "/var/lib/containers", "/run/crio", "/var/run/crio",
    "/run/buildkit", "/var/lib/buildkit",
]  # fmt: skip


def refusal(source: str, env: dict[str, str] | None = None, root: Path = Path("/")) -> str:
    mount = parse_volume(f"{source}:/d:ro", root)
    with pytest.raises(BackendError) as exc:
        check_mount(mount, None, docker_sockets(env or {}))
    message = exc.value.message
    assert message.startswith(f"volume '{mount.source}' would expose the ")
    assert message.endswith("; this is always refused")
    return message


def accepted(source: str, env: dict[str, str] | None = None) -> bool:
    mount = parse_volume(f"{source}:/d:ro", Path("/"))
    return check_mount(mount, None, docker_sockets(env or {})) is None


def test_the_docker_state_dir_exposing_containerd_is_refused() -> None:
    mount = parse_volume("/run/docker:/d:ro", Path("/"))
    with pytest.raises(BackendError) as exc:
        check_mount(mount, None, docker_sockets({}))
    assert exc.value.message == (
        "volume '/run/docker' would expose the container runtime directory /run/docker; "
        "this is always refused"
    )
    assert exc.value.hint == RUNTIME_HINT


@pytest.mark.parametrize("path", RUNTIME_DIRS)
def test_runtime_dirs_and_what_is_inside_them_are_refused(path: str) -> None:
    # named as it really is: /var/run is a link to /run on most systems
    exposed = f"would expose the container runtime directory {os.path.realpath(path)};"
    assert exposed in refusal(path)
    assert exposed in refusal(f"{path}/volumes/data")  # inside it names the runtime dir


@pytest.mark.parametrize("path", ["/", "/run", "/var/run", "/var/lib", "/var"])
def test_dirs_holding_runtime_state_are_refused(path: str) -> None:
    assert refusal(path).startswith(f"volume '{path}' would expose the ")


def test_the_docker_socket_keeps_its_message() -> None:
    with pytest.raises(BackendError) as exc:
        check_mount(Mount("/run", "/r"), None, docker_sockets({}))
    assert exc.value.message == (
        "volume '/run' would expose the Docker socket /run/docker.sock; this is always refused"
    )
    assert exc.value.hint == DOCKER_HINT


def test_a_symlink_elsewhere_to_a_runtime_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data").symlink_to("/var/lib/containerd")
    (tmp_path / "hop").symlink_to(tmp_path / "data")
    assert "/var/lib/containerd" in refusal(str(tmp_path / "hop"))
    (tmp_path / "run").symlink_to("/run")
    assert "/run/containerd" in refusal(f"{tmp_path}/run/containerd")


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "deep" / "er" / "containerd.sock"
    path.parent.mkdir(parents=True)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        yield path


def test_a_dir_holding_a_runtime_socket_is_refused(tmp_path: Path, unix_socket: Path) -> None:
    message = refusal(str(tmp_path))
    assert message == (
        f"volume '{tmp_path}' would expose the container runtime socket {unix_socket}; "
        "this is always refused"
    )
    (tmp_path / "link").symlink_to(unix_socket)
    assert str(unix_socket) in refusal(str(tmp_path / "link"))


def test_rootless_runtimes_of_the_user_are_refused(tmp_path: Path) -> None:
    xdg, home = tmp_path / "xdg", tmp_path / "home"
    (xdg / "podman").mkdir(parents=True)
    (home / ".local" / "share" / "containers").mkdir(parents=True)
    env = {"XDG_RUNTIME_DIR": str(xdg), "HOME": str(home)}
    assert f"{xdg}/podman" in refusal(str(xdg / "podman" / "podman.sock"), env)
    assert f"{xdg}/docker.sock" in refusal(str(xdg), env)  # Docker's is named first
    assert f"{home}/.local/share/containers" in refusal(str(home / ".local"), env)
    assert accepted(str(home / "data"), env)


def test_ordinary_dirs_and_files_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "containerd.sock").write_text("a plain file, not a socket\n")
    (tmp_path / "home").mkdir()
    assert accepted(str(tmp_path / "data"))
    assert accepted(str(tmp_path / "home"), {"HOME": str(tmp_path / "home")})
    assert accepted("/var/lib/postgresql")
    assert accepted("/run/user-data")  # a sibling named alike is not inside


# --- any spelling of a dangerous path --------------------------------------------------------

SEPARATORS = st.sampled_from(["/", "//", "/./", "///./"])


@st.composite
def spellings(draw: st.DrawFn, path: str, links: Path) -> str:
    """`path` spelled with doubled slashes, `.` and `..` detours, trailing slashes, links."""
    parts = [part for part in path.split("/") if part]
    out = ""
    for part in parts:
        detour = draw(st.sampled_from(["", "nonexistent/../", "tmp/../"]))
        out += draw(SEPARATORS) + detour + part
    out = out or "/"
    out += draw(st.sampled_from(["", "/", "//", "/."]))
    if parts and draw(st.booleans()):  # through a symlink to the first component's parent
        out = f"{links}/root{out}"
    return out


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("links")
    (base / "root").symlink_to("/")
    return base


DANGEROUS = [*RUNTIME_DIRS, "/run/docker.sock", "/var/run/docker.sock", "/", "/run", "/var/lib"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), path=st.sampled_from(DANGEROUS))
def test_every_spelling_is_refused(links: Path, data: st.DataObject, path: str) -> None:
    spelled = data.draw(spellings(path, links))
    assert os.path.realpath(spelled) in (os.path.realpath(path), path)
    refusal(spelled)
