"""Local conda channels for offline tests: tiny packages, and the host's Python repackaged.

No conda channel is reachable from the test machines, so tests build their own: ``.tar.bz2``
packages (``info/index.json``, ``info/paths.json`` and the files), one ``repodata.json`` per
subdir. ``host_python()`` packs the running interpreter's prefix (stdlib, no site-packages) as
``python``, and ``host_pip()`` the host's pip, so a realistic ``python=3.11`` + ``pip`` conda.yaml
solves, installs and runs.

Also a script: ``python -m tests.conda_channel DIR`` writes a channel with python, pip and two
tiny packages to DIR (what ``sample_projects/conda_project`` uses).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import sysconfig
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PLACEHOLDER = "/opt/runner-conda-placeholder-prefix"  # replaced by the installer in text files
# Not shipped in the repackaged python: big, and nothing in a test env imports them.
_SKIPPED_STDLIB = {
    "site-packages",
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "lib2to3",
    "__pycache__",
}


@dataclass(frozen=True)
class Package:
    """One conda package: its index entry and files (text files may name ``PLACEHOLDER``)."""

    name: str
    version: str
    build: str = "0"
    depends: tuple[str, ...] = ()
    subdir: str = "noarch"
    files: Mapping[str, bytes | str] = field(default_factory=dict)
    # files on disk to pack as they are (prefix-relative name -> source path)
    copied: Mapping[str, Path] = field(default_factory=dict)
    # prefix-relative names of files (text) in which the installer replaces ``placeholder``
    prefixed: tuple[str, ...] = ()
    placeholder: str = PLACEHOLDER

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.build}.tar.bz2"

    def index(self) -> dict[str, object]:
        entry: dict[str, object] = {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "build_number": 0,
            "depends": list(self.depends),
            "subdir": self.subdir,
            "license": "MIT",
            "timestamp": 1700000000000,
        }
        if self.subdir == "noarch":
            entry["noarch"] = "generic"
        else:
            entry["arch"], entry["platform"] = "x86_64", "linux"
        return entry


def current_subdir() -> str:
    """The conda subdir of this machine, e.g. linux-64."""
    machine = os.uname().machine
    arch = {"x86_64": "64", "aarch64": "aarch64", "arm64": "arm64"}.get(machine, machine)
    system = "osx" if sys.platform == "darwin" else "linux"
    return f"{system}-{arch}"


def build_channel(root: Path, packages: Iterable[Package]) -> Path:
    """Write the packages and each subdir's repodata.json under ``root``; returns ``root``."""
    repodata: dict[str, dict[str, dict[str, object]]] = {"noarch": {}, current_subdir(): {}}
    for package in packages:
        subdir = root / package.subdir
        subdir.mkdir(parents=True, exist_ok=True)
        data = _archive(package)
        (subdir / package.filename).write_bytes(data)
        entry = {
            **package.index(),
            "md5": hashlib.md5(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
        repodata.setdefault(package.subdir, {})[package.filename] = entry
    for subdir, entries in repodata.items():
        (root / subdir).mkdir(parents=True, exist_ok=True)
        document = {"info": {"subdir": subdir}, "packages": entries, "packages.conda": {}}
        (root / subdir / "repodata.json").write_text(json.dumps(document, indent=1))
    return root


def _archive(package: Package) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:bz2", compresslevel=1) as tar:
        paths = []
        for name, content in sorted(package.files.items()):
            data = content.encode() if isinstance(content, str) else content
            _add_bytes(tar, name, data, 0o755 if name.startswith("bin/") else 0o644)
            paths.append(_path_entry(package, name, data))
        for name, source in sorted(package.copied.items()):
            tar.add(source, arcname=name, recursive=False)
            paths.append(_path_entry(package, name, source.read_bytes()))
        names = [entry["_path"] for entry in paths]
        _add_bytes(tar, "info/index.json", json.dumps(package.index()).encode(), 0o644)
        _add_bytes(tar, "info/files", ("\n".join(names) + "\n").encode(), 0o644)
        document = {"paths": paths, "paths_version": 1}
        _add_bytes(tar, "info/paths.json", json.dumps(document).encode(), 0o644)
    return buffer.getvalue()


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 1700000000
    tar.addfile(info, io.BytesIO(data))


def _path_entry(package: Package, name: str, data: bytes) -> dict[str, object]:
    entry: dict[str, object] = {
        "_path": name,
        "path_type": "hardlink",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size_in_bytes": len(data),
    }
    if name in package.prefixed:
        entry["prefix_placeholder"] = package.placeholder
        entry["file_mode"] = "text"
    return entry


def tiny(
    name: str,
    version: str = "1.0",
    depends: Iterable[str] = (),
    files: Mapping[str, str] | None = None,
    build: str = "0",
) -> Package:
    """A noarch package with a ``bin/NAME`` script that prints NAME VERSION (and ``files``)."""
    script = f"#!/bin/sh\necho {name} {version}\n"
    contents: dict[str, bytes | str] = {f"bin/{name}": script, **(files or {})}
    return Package(name, version, build=build, depends=tuple(depends), files=contents)


def host_python() -> Package:
    """The running interpreter's prefix as a ``python`` package: bin/, lib/ without site-packages.

    Text files naming the host prefix (sysconfig data, scripts) get it as their placeholder,
    so the installer rewrites them to the env's prefix, as with a real conda python.
    """
    prefix = Path(sys.base_prefix)
    version = ".".join(map(str, sys.version_info[:3]))
    copied: dict[str, Path] = {}
    prefixed: list[str] = []
    # a system prefix (/usr) is in too many unrelated strings to stand for the env's prefix
    placeholder_ok = str(prefix) not in ("/", "/usr", "/usr/local")
    for path in _python_files(prefix):
        relative = path.relative_to(prefix).as_posix()
        copied[relative] = path
        if placeholder_ok and not path.is_symlink() and _names_prefix(path, str(prefix)):
            prefixed.append(relative)
    major_minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    # an empty site-packages, as a real python package ships it (uv installs there)
    marker = f"lib/python{major_minor}/site-packages/README.txt"
    return Package(
        "python",
        version,
        build="h_host_0",
        subdir=current_subdir(),
        files={marker: "conda site-packages\n"},
        copied=copied,
        prefixed=tuple(prefixed),
        placeholder=str(prefix),
    )


def _python_files(prefix: Path) -> Iterable[Path]:
    ldlibrary = sysconfig.get_config_var("LDLIBRARY") or ""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for name in (f"python{version}", f"python{sys.version_info[0]}", "python"):
        if (prefix / "bin" / name).exists():
            yield prefix / "bin" / name
    for lib in (prefix / "lib").glob("libpython*"):
        if ldlibrary and lib.name.startswith("libpython"):
            yield lib
    yield from _walk(prefix / "lib" / f"python{version}")


def _walk(directory: Path) -> Iterable[Path]:
    for entry in sorted(directory.iterdir()):
        if entry.name in _SKIPPED_STDLIB or entry.name.startswith("config-"):
            continue
        if entry.is_dir() and not entry.is_symlink():
            yield from _walk(entry)
        elif entry.is_file() or entry.is_symlink():
            yield entry


def _names_prefix(path: Path, prefix: str) -> bool:
    if path.suffix not in (".py", ".cfg", "") or path.stat().st_size > 2_000_000:
        return False
    data = path.read_bytes()
    return b"\0" not in data[:4096] and prefix.encode() in data


def host_pip() -> Package:
    """The host's pip, unpacked into site-packages, with a ``bin/pip`` entry script."""
    import pip

    site = Path(pip.__file__).parent.parent
    dist = next(site.glob(f"pip-{pip.__version__}.dist-info"))
    major_minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    target = f"lib/python{major_minor}/site-packages"
    copied = {}
    for root in (Path(pip.__file__).parent, dist):
        for path in root.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                copied[f"{target}/{path.relative_to(site).as_posix()}"] = path
    script = f"#!{PLACEHOLDER}/bin/python{major_minor}\nfrom pip._internal.cli.main import main\n"
    script += "import sys\nsys.exit(main())\n"
    return Package(
        "pip",
        pip.__version__,
        depends=(f"python >={major_minor},<{sys.version_info[0]}.{sys.version_info[1] + 1}",),
        files={"bin/pip": script},
        copied=copied,
        prefixed=("bin/pip",),
    )


def sample_channel(root: Path) -> Path:
    """python, pip and two tiny packages (hello depends on greeting)."""
    activate = {"etc/conda/activate.d/greeting.sh": 'export GREETING="hello from conda"\n'}
    greeting = tiny("greeting", "1.0", files=activate)
    hello = tiny("hello", "2.0", depends=["greeting >=1"])
    return build_channel(root, [host_python(), host_pip(), greeting, hello])


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "channel").resolve()
    print(sample_channel(target).as_uri())
