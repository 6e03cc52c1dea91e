"""Local base images for the Docker tests, built without pulling anything (no registry here).

- ``runner-test/busybox``: busybox-static on ``FROM scratch`` (shell only, ~2 MB).
- ``runner-test/python:X.Y``: the host's own interpreter, its stdlib and the shared libraries
  ``ldd`` lists, with busybox as ``/bin/sh`` (~60 MB); ``venv`` + ``pip`` work inside.

Both are cached by tag and recipe label: built once per machine, reused afterwards. The CI script
installs the ``busybox-static`` apt package; without ``/bin/busybox`` the helpers raise
``ImageUnavailable`` and the fixtures skip with that reason.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import sysconfig
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BUSYBOX = Path("/bin/busybox")
BUSYBOX_TAG = "runner-test/busybox:latest"
PYTHON_TAG = f"runner-test/python:{sys.version_info.major}.{sys.version_info.minor}"
RECIPE_LABEL = "runner.test.recipe"
RECIPE = "5"  # bump when the recipe changes so cached images are rebuilt
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Names of what one test session creates, so its leak check and cleanup never touch anything
# else on the engine. From the pid: the same in every module that computes it, in one process.
SESSION = f"{os.getpid():x}"
RUN_PREFIX = f"dtest-{SESSION}-"  # run ids, hence container labels and names
PROJECT_PREFIX = f"dtest-{SESSION}"  # project names: their images are runner/<prefix>...
ENV_KEY_PREFIX = f"d7e57{SESSION}"  # env keys: their images are runner-env:<prefix>...

# parts of the stdlib no test needs: they would triple the image for nothing
_STDLIB_SKIP = re.compile(
    r"^(site-packages|test|idlelib|tkinter|turtledemo|lib2to3/tests|config-[^/]*)(/|$)"
    r"|/tests?/|\.opt-[12]\.pyc$|^lib-dynload/_tkinter"
)


class ImageUnavailable(RuntimeError):
    """A base image cannot be built on this machine (the reason says why)."""


def ensure_busybox_image(client: Any) -> str:
    """The busybox image's tag, built on first use."""
    return _ensure(client, BUSYBOX_TAG, _busybox_context)


def ensure_python_image(client: Any) -> str:
    """The host-Python image's tag, built on first use."""
    return _ensure(client, PYTHON_TAG, _python_context)


def _ensure(client: Any, tag: str, make_context: Callable[[], io.BytesIO]) -> str:
    import docker.errors

    try:
        old = client.images.get(tag)
    except docker.errors.ImageNotFound:
        old = None
    if old is not None and old.labels.get(RECIPE_LABEL) == RECIPE:
        return tag
    if not BUSYBOX.is_file():
        raise ImageUnavailable(f"{BUSYBOX} is missing: install the busybox-static apt package")
    labels = {RECIPE_LABEL: RECIPE}
    context = make_context()
    client.images.build(
        fileobj=context, custom_context=True, tag=tag, labels=labels, rm=True, forcerm=True
    )
    if old is not None:  # an older recipe's image, now untagged: don't leave it behind
        with contextlib.suppress(docker.errors.APIError):  # still used by child images
            client.images.remove(old.id)
    return tag


def _dockerfile(env: str = "") -> str:
    return f'FROM scratch\nCOPY rootfs/ /\nENV PATH={env}{BASE_PATH}\nCMD ["/bin/sh"]\n'


def _busybox_context() -> io.BytesIO:
    return _context(_dockerfile(), _shell_members())


def _python_context() -> io.BytesIO:
    prefix = Path(sys.base_prefix)
    members = [*_shell_members(), *_python_members(prefix), *_library_members(prefix)]
    members += _merged_usr_links()
    return _context(_dockerfile(f"{prefix}/bin:"), members)


# (path in image, source): a host file, a symlink target, literal bytes, or None for a directory
Member = tuple[str, Path | str | bytes | None]


def _context(dockerfile: str, members: list[Member]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        _add_bytes(tar, "Dockerfile", dockerfile.encode())
        seen: set[str] = set()
        for name, source in members:
            if name not in seen:
                seen.add(name)
                _add_member(tar, "rootfs" + name, source)
    buf.seek(0)
    return buf


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _add_member(tar: tarfile.TarFile, name: str, source: Path | str | bytes | None) -> None:
    info = tarfile.TarInfo(name)
    if isinstance(source, bytes):
        _add_bytes(tar, name, source)
    elif source is None:
        info.type, info.mode = tarfile.DIRTYPE, 0o1777 if name.endswith("/tmp") else 0o755
        tar.addfile(info)
    elif isinstance(source, str):
        info.type, info.linkname = tarfile.SYMTYPE, source
        tar.addfile(info)
    else:
        stat = source.stat()  # follows links: the image gets the file under the name ldd used
        info.size, info.mode = stat.st_size, stat.st_mode & 0o7777
        with source.open("rb") as fh:
            tar.addfile(info, fh)


def _shell_members() -> list[Member]:
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    links: list[Member] = [(f"/bin/{name}", "busybox") for name in applets if name != "busybox"]
    passwd = b"root:x:0:0:root:/root:/bin/sh\n"
    files: list[Member] = [("/tmp", None), ("/root", None), ("/etc", None)]
    return [*files, ("/bin/busybox", BUSYBOX), *links, ("/etc/passwd", passwd)]


def _python_members(prefix: Path) -> Iterator[Member]:
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    yield f"{prefix}/bin/{version}", prefix / "bin" / version
    yield f"{prefix}/bin/python3", version
    yield f"{prefix}/bin/python", version
    for lib in (prefix / "lib").glob("libpython*.so*"):
        yield str(lib), os.readlink(lib) if lib.is_symlink() else lib
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    yield from _tree(stdlib, lambda rel: not _STDLIB_SKIP.search(rel))
    # pip, as python:X.Y-slim has it; nothing else from the host's site-packages
    yield from _tree(stdlib / "site-packages", lambda rel: rel.startswith("pip"))


def _tree(top: Path, keep: Callable[[str], bool]) -> Iterator[Member]:
    for path in sorted(top.rglob("*")):
        if path.is_file() and keep(path.relative_to(top).as_posix()):
            yield str(path), path


def _library_members(prefix: Path) -> Iterator[Member]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    binaries = [prefix / "bin" / Path(sys.executable).resolve().name]
    binaries += [p for p in (stdlib / "lib-dynload").glob("*.so") if "_tkinter" not in p.name]
    for lib in sorted(_ldd_paths(binaries) | _wheel_system_libs()):
        if not lib.startswith(str(prefix)):
            real_dir = os.path.realpath(os.path.dirname(lib))
            yield f"{real_dir}/{os.path.basename(lib)}", Path(lib)


def _wheel_system_libs() -> set[str]:
    """The manylinux policy's system libraries that wheels (pydantic-core, numpy) link to."""
    import glob

    names = ("libgcc_s.so.1", "libstdc++.so.6", "librt.so.1", "libdl.so.2", "libpthread.so.0",
             "libutil.so.1", "libresolv.so.2", "libm.so.6")  # fmt: skip
    return {found for name in names for found in glob.glob(f"/usr/lib/*-linux-gnu/{name}")[:1]}


def _ldd_paths(binaries: list[Path]) -> set[str]:
    out = subprocess.run(
        ["ldd", *map(str, binaries)], capture_output=True, text=True, check=False
    ).stdout
    found = set(re.findall(r"=>\s+(/\S+)", out))
    found |= set(re.findall(r"^\s+(/\S+ld-linux\S*)\s", out, re.M))
    # glibc dlopens libgcc_s when a thread exits (pthread_exit): ldd cannot list it
    libc = next((p for p in found if os.path.basename(p).startswith("libc.so")), None)
    if libc and os.path.exists(gcc := os.path.join(os.path.dirname(libc), "libgcc_s.so.1")):
        found.add(gcc)
    return found


def _merged_usr_links() -> list[Member]:
    """Debian 12 is merged-/usr: the loader path /lib64/ld-linux... must resolve in the image."""
    links: list[Member] = []
    for top in ("/lib", "/lib64"):
        if os.path.islink(top):
            links.append((top, os.readlink(top)))
    return links
