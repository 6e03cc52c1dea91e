"""A stand-in for a conda executable: the two calls runner makes, answered like conda does.

``create --dry-run --json --override-channels --channel URL... --prefix P -- SPEC...`` prints
conda's JSON report (``actions.FETCH`` with full records, ``actions.LINK``); ``create --prefix P
--file EXPLICIT`` installs an ``@EXPLICIT`` file's URLs (file:// channels only) into P the way
conda does: text files get P itself as their prefix. Every call is appended to
``$STANDIN_LOG``. Solving and linking are done with rattler (no conda exists here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import rattler


def main(argv: list[str]) -> int:
    if os.environ.get("STANDIN_LOG"):
        with open(os.environ["STANDIN_LOG"], "a") as log:
            log.write(" ".join(argv) + "\n")
    parser = argparse.ArgumentParser(prog="conda")
    parser.add_argument("command", choices=["create"])
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--yes", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--override-channels", action="store_true")
    parser.add_argument("--channel", action="append", default=[])
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--file")
    options, specs = (
        (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    )
    args = parser.parse_args(options)
    if args.dry_run:
        return _dry_run(args.channel, specs)
    return _create(Path(args.prefix), Path(args.file))


def _dry_run(channels: list[str], specs: list[str]) -> int:
    try:
        records = asyncio.run(rattler.solve(sources=channels, specs=specs))
    except rattler.exceptions.SolverError as exc:
        print(json.dumps({"success": False, "error": str(exc), "exception_name": "Unsat"}))
        return 1
    fetch = [_conda_record(r) for r in records]
    link = [{k: r[k] for k in ("name", "version", "build_number", "channel")} for r in fetch]
    for item, record in zip(link, fetch, strict=True):
        item["build_string"], item["platform"] = record["build"], record["subdir"]
    print(json.dumps({"success": True, "actions": {"FETCH": fetch, "LINK": link}}))
    return 0


def _conda_record(record: Any) -> dict[str, Any]:
    noarch = record.noarch
    return {
        "name": record.name.normalized,
        "version": str(record.version),
        "build": str(record.build),
        "build_number": record.build_number,
        "channel": record.channel,
        "subdir": str(record.subdir),
        "noarch": "python" if noarch.python else "generic" if noarch.generic else None,
        "depends": list(record.depends),
        "url": record.url,
        "md5": record.md5.hex(),
        "sha256": record.sha256.hex(),
        "fn": record.file_name,
    }


def _create(prefix: Path, explicit: Path) -> int:
    lines = explicit.read_text().splitlines()
    if lines[:1] != ["@EXPLICIT"]:
        print("not an explicit file", file=sys.stderr)
        return 1
    records = [_record_of(line.split("#")[0]) for line in lines[1:] if line.strip()]
    asyncio.run(rattler.install(records, target_prefix=prefix, show_progress=False))
    return 0


def _record_of(url: str) -> Any:
    """The repodata record of a file:// package URL, from its subdir's repodata.json."""
    path = Path(url2pathname(urlsplit(url).path))
    repodata = json.loads((path.parent / "repodata.json").read_text())
    entry = repodata["packages"][path.name]
    record = rattler.PackageRecord(
        name=entry["name"],
        version=entry["version"],
        build=rattler.BuildString(entry["build"]),
        build_number=entry["build_number"],
        subdir=entry["subdir"],
        noarch=rattler.NoArchType(entry["noarch"]) if entry.get("noarch") else None,
        depends=entry["depends"],
        sha256=bytes.fromhex(entry["sha256"]),
        md5=bytes.fromhex(entry["md5"]),
    )
    channel = url.rsplit("/", 2)[0]
    return rattler.RepoDataRecord(record, path.name, url, channel)


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)  # rattler's worker threads can abort a normal interpreter shutdown
