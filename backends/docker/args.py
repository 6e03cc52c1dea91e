"""MLflow's -A/--docker-args, translated to the Docker SDK's ``containers.create`` options."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from runner.errors import BackendError

ArgValue = str | bool


def _text(name: str, value: ArgValue) -> str:
    if isinstance(value, bool):
        raise BackendError(f"docker argument '-A {name}' needs a value, e.g. -A {name}=VALUE")
    return value


def _flag(name: str, value: ArgValue) -> bool:
    if isinstance(value, bool) or value.lower() in ("true", "false"):
        return value if isinstance(value, bool) else value.lower() == "true"
    raise BackendError(f"docker argument '-A {name}' is a flag; got the value {value!r}")


def _number(name: str, value: ArgValue) -> float:
    try:
        return float(_text(name, value))
    except ValueError:
        raise BackendError(f"docker argument '-A {name}' expects a number, got {value!r}") from None


def _gpus(name: str, value: ArgValue) -> list[dict[str, Any]]:
    text = _text(name, value).strip('"')
    request: dict[str, Any] = {"capabilities": [["gpu"]]}
    if text == "all":
        request["count"] = -1
    elif text.startswith("device="):
        request["device_ids"] = text.removeprefix("device=").split(",")
    else:
        request["count"] = int(_number(name, text))
    return [request]


def _network(name: str, value: ArgValue) -> dict[str, str]:
    text = _text(name, value)
    builtin = text in ("bridge", "host", "none") or text.startswith("container:")
    return {"network_mode": text} if builtin else {"network": text}


def _host(name: str, value: ArgValue) -> dict[str, str]:
    host, sep, address = _text(name, value).partition(":")
    if not sep:
        raise BackendError(f"docker argument '-A {name}' expects HOST:IP, got {value!r}")
    return {host: address}


Converter = Callable[[str, ArgValue], dict[str, Any]]


def _to(key: str, convert: Callable[[str, ArgValue], Any]) -> Converter:
    return lambda name, value: {key: convert(name, value)}


_ALIASES = {"m": "memory", "t": "tty", "c": "cpu-shares", "u": "user", "net": "network"}
_DOCKER_ARGS: dict[str, Converter] = {
    "memory": _to("mem_limit", _text),
    "memory-swap": _to("memswap_limit", _text),
    "memory-reservation": _to("mem_reservation", _text),
    "shm-size": _to("shm_size", _text),
    "cpus": _to("nano_cpus", lambda n, v: math.floor(_number(n, v) * 1e9)),
    "cpu-shares": _to("cpu_shares", lambda n, v: int(_number(n, v))),
    "cpuset-cpus": _to("cpuset_cpus", _text),
    "gpus": _to("device_requests", _gpus),
    "privileged": _to("privileged", _flag),
    "tty": _to("tty", _flag),
    "read-only": _to("read_only", _flag),
    "user": _to("user", _text),
    "network": _network,
    "ipc": _to("ipc_mode", _text),
    "cap-add": _to("cap_add", lambda n, v: [_text(n, v)]),
    "cap-drop": _to("cap_drop", lambda n, v: [_text(n, v)]),
    "security-opt": _to("security_opt", lambda n, v: [_text(n, v)]),
    "device": _to("devices", lambda n, v: [_text(n, v)]),
    "add-host": _to("extra_hosts", _host),
    "platform": _to("platform", _text),
    "runtime": _to("runtime", _text),
    "rm": lambda n, v: {},  # containers are always removed once their logs are read
}
_REFUSED = {
    "v": "volumes", "volume": "volumes", "mount": "volumes",
    "e": "environment", "env": "environment", "env-file": "environment",
}  # fmt: skip


def map_docker_args(args: Mapping[str, ArgValue]) -> dict[str, Any]:
    """Translate ``-A`` options to ``containers.create`` keyword arguments."""
    out: dict[str, Any] = {}
    for raw, value in args.items():
        name = _ALIASES.get(raw, raw)
        if name in _REFUSED:
            raise BackendError(
                f"docker argument '-A {raw}' is not allowed",
                hint=f"declare it in the MLproject's docker_env.{_REFUSED[name]}, "
                "where the operator's allowlist applies",
            )
        if name not in _DOCKER_ARGS:
            supported = ", ".join(sorted([*_DOCKER_ARGS, *_ALIASES]))
            raise BackendError(
                f"unsupported docker argument '-A {raw}'", hint=f"supported: {supported}"
            )
        out.update(_DOCKER_ARGS[name](raw, value))
    return out
