"""`python -m runner.execution.supervisor RUN_ID`: the detached process behind --detach."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from runner.execution.lifecycle import supervise

    if len(argv) != 1:
        print("usage: python -m runner.execution.supervisor RUN_ID", file=sys.stderr)
        return 2
    return supervise(argv[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
