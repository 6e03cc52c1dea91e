"""The steps as a DAG: unknown needs and cycles named, and a topological order."""

from __future__ import annotations

import graphlib
from collections.abc import Mapping, Sequence


def cycle_in(needs: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle of steps as ``[a, b, a]`` when there is one, else None (unknown names ignored)."""
    graph = {step: [n for n in deps if n in needs] for step, deps in needs.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        found: list[str] = list(exc.args[1])
        return found[::-1]  # graphlib lists it against the edges: a needs b reads a → b
    return None


def topological(needs: Mapping[str, Sequence[str]]) -> list[str]:
    """Steps so that each comes after what it needs; ties keep the file's order."""
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(needs):
        ready = [s for s in needs if s not in done and all(n in done for n in needs[s])]
        if not ready:
            raise ValueError("the steps form a cycle")  # callers check cycle_in first
        order += ready
        done.update(ready)
    return order


def downstream(needs: Mapping[str, Sequence[str]], roots: set[str]) -> set[str]:
    """``roots`` and every step that needs one of them, directly or not."""
    found = set(roots)
    changed = True
    while changed:
        more = {s for s, deps in needs.items() if s not in found and found.intersection(deps)}
        found |= more
        changed = bool(more)
    return found
