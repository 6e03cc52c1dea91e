"""Activation without shell scripts: variables from conda.yaml and packages' env-var files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

ACTIVATION_FILE = ".runner-activation.json"  # written at build time, read on every run
_EXPORT = re.compile(r"^export\s+(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")
_PREFIX_REF = re.compile(r"\$\{CONDA_PREFIX\}|\$CONDA_PREFIX(?![A-Za-z0-9_])")
_PREFIX_TOKEN = "${CONDA_PREFIX}"
_STORED = re.compile(r"\$\$|\$\{CONDA_PREFIX\}")


def collect(prefix: Path, variables: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """(variables, skipped scripts): ``etc/conda/activate.d/*.sh`` files that only export
    variables, ``etc/conda/env_vars.d/*.json``, then conda.yaml's ``variables`` (which win).

    Values keep ``${CONDA_PREFIX}``: the env is renamed into place after the build.
    """
    found: dict[str, str] = {}
    skipped: list[str] = []
    for script in sorted((prefix / "etc" / "conda" / "activate.d").glob("*.sh")):
        exports = _exports(script.read_text(encoding="utf-8", errors="replace"))
        if exports is None:
            skipped.append(script.relative_to(prefix).as_posix())
        else:
            found.update(exports)
    for path in sorted((prefix / "etc" / "conda" / "env_vars.d").glob("*.json")):
        found.update(_json_vars(path))
    found.update(dict(variables))
    return found, skipped


def _exports(text: str) -> dict[str, str] | None:
    """The variables a script exports, or None when it does anything else."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _EXPORT.match(line)
        value = _value(match["value"]) if match else None
        if match is None or value is None:
            return None
        out[match["name"]] = value
    return out


def _value(text: str) -> str | None:
    """A shell value we can take without a shell: quoted or plain, expanding CONDA_PREFIX only."""
    if len(text) >= 2 and text[0] == text[-1] == "'":
        inner = text[1:-1]
        return None if "'" in inner else inner.replace("$", "$$")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    elif any(ch.isspace() or ch in "'\";&|<>()" for ch in text):
        return None
    plain = _PREFIX_REF.sub("", text)
    if any(ch in plain for ch in '$`\\"'):
        return None  # another expansion or an escape: a shell would be needed
    return _PREFIX_REF.sub(_PREFIX_TOKEN, text)


def _json_vars(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v).replace("$", "$$") for k, v in data.items()}


def write_activation(prefix: Path, variables: Mapping[str, str]) -> None:
    (prefix / ACTIVATION_FILE).write_text(json.dumps(dict(variables), sort_keys=True) + "\n")


def read_activation(prefix: Path) -> dict[str, str]:
    """The env's variables, with its real prefix in place of ``${CONDA_PREFIX}``."""
    try:
        data = json.loads((prefix / ACTIVATION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): expand(str(v), prefix) for k, v in data.items()}


def expand(value: str, prefix: Path) -> str:
    """``$$`` is a literal ``$``; ``${CONDA_PREFIX}`` the env's prefix (one left-to-right pass)."""
    return _STORED.sub(lambda m: "$" if m.group() == "$$" else str(prefix), value)
