"""The `-c` config of a Slurm run: its schema, the extra_args allowlist, and the sbatch options."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from runner.errors import BackendError

# What may appear in a value that becomes an #SBATCH line: no spaces, quotes or newlines,
# so a value can never end its directive and start a line of the script
SAFE_CHARS = r"[A-Za-z0-9_.,:=@%/+\-\[\]]*"
SAFE_VALUE = f"^{SAFE_CHARS}$"
# fullmatch, not the schema's pattern: Python's ``$`` also matches before a final newline
_SAFE = re.compile(SAFE_CHARS)
# Slurm's own formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
TIME_PATTERN = r"^(\d+|\d+:\d{2}|\d+:\d{2}:\d{2}|\d+-\d+|\d+-\d+:\d{2}|\d+-\d+:\d{2}:\d{2})$"

# sbatch options a user may add: resources, placement, scheduling and notification. Not
# allowed: what runner sets itself (--job-name, --comment, --output, --error, --open-mode,
# --chdir, --array, --requeue), or what changes who runs it, what runs, or what the job sees
# (--uid, --gid, --wrap, --export, --get-user-env, --container, --input, --wait, --test-only)
EXTRA_ARGS_ALLOWED = (
    "--begin",
    "--cores-per-socket",
    "--cpus-per-gpu",
    "--deadline",
    "--distribution",
    "--exclude",
    "--exclusive",
    "--gpus-per-node",
    "--gpus-per-task",
    "--hint",
    "--licenses",
    "--mail-type",
    "--mail-user",
    "--mem-per-cpu",
    "--mem-per-gpu",
    "--nice",
    "--nodelist",
    "--ntasks",
    "--ntasks-per-node",
    "--reservation",
    "--signal",
    "--sockets-per-node",
    "--switches",
    "--threads-per-core",
    "--tmp",
    "--wckey",
)

_STRING = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": SAFE_VALUE}
_COUNT = {"type": "integer", "minimum": 1, "maximum": 1_000_000}
CONFIG_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "partition": _STRING,
        "account": _STRING,
        "qos": _STRING,
        "time": {
            "oneOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": TIME_PATTERN},
            ]
        },
        "cpus": _COUNT,
        "memory": {
            "oneOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": r"^\d+[KMGT]?$"},
            ]
        },
        "gpus": {"type": "integer", "minimum": 0, "maximum": 1024},
        "gres": _STRING,
        "nodes": _COUNT,
        "constraint": {**_STRING, "pattern": r"^[A-Za-z0-9_.,:=@%/+\-\[\]&|*()!]*$"},
        "requeue": {"type": "boolean"},
        "extra_args": {"type": "array", "items": {"type": "string"}, "maxItems": 64},
        "container": {**_STRING, "maxLength": 1000},
    },
}

_DIRECT = (
    ("partition", "--partition"),
    ("account", "--account"),
    ("qos", "--qos"),
    ("cpus", "--cpus-per-task"),
    ("gres", "--gres"),
    ("nodes", "--nodes"),
    ("constraint", "--constraint"),
    ("container", "--container"),
)


def sbatch_options(config: Mapping[str, Any]) -> list[str]:
    """The ``--name=value`` options the config asks for, in a fixed order."""
    options = [f"{flag}={config[key]}" for key, flag in _DIRECT if key in config]
    if "time" in config:
        options.append(f"--time={config['time']}")
    if "memory" in config:
        options.append(f"--mem={config['memory']}")
    if config.get("gpus"):
        options.append(f"--gpus={config['gpus']}")
    # explicit either way: a cluster's JobRequeue default must not decide a run's fate
    options.append("--requeue" if config.get("requeue") else "--no-requeue")
    return options + checked_extra_args(config.get("extra_args", ()))


def checked_extra_args(items: Any) -> list[str]:
    """``extra_args`` as given, each one an allowlisted option; anything else is refused."""
    return [_checked_extra(str(item)) for item in items]


def _checked_extra(item: str) -> str:
    name, _, value = item.partition("=")
    if name not in EXTRA_ARGS_ALLOWED:
        allowed = ", ".join(EXTRA_ARGS_ALLOWED)
        raise BackendError(
            f"slurm extra_args: {item!r} is not an allowed sbatch option",
            hint=f"allowed: {allowed} (as --name=value); set resources with the config keys",
        )
    if not _SAFE.fullmatch(value):
        raise BackendError(
            f"slurm extra_args: the value of {name} may hold only letters, digits and "
            "_ . , : = @ % / + - [ ]",
        )
    return item


def check_config(config: Mapping[str, Any]) -> None:
    """What the schema cannot say: no value holds a line break (each becomes an #SBATCH
    line), extra_args are from the allowlist, and gpus xor gres."""
    for key, value in config.items():
        if isinstance(value, str) and any(ord(char) < 32 or ord(char) == 127 for char in value):
            raise BackendError(f"slurm config: {key} holds a line break or control character")
    checked_extra_args(config.get("extra_args", ()))
    if config.get("gpus") and "gres" in config:
        raise BackendError("slurm config: set either gpus or gres, not both")
