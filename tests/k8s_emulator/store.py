"""The emulator's object store: uid, resourceVersion, generateName, selectors, watch history."""

from __future__ import annotations

import copy
import datetime
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
HISTORY = 500  # events kept for watch resume; older resourceVersions get 410 Gone


class ApiError(Exception):
    """An error the API server answers with a ``kind: Status`` body."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> Obj:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- selectors ------------------------------------------------------------------------------

_SET = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_outside_parens(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p for p in [*parts, current] if p.strip()]


def _requirement(term: str) -> Callable[[dict[str, str]], bool]:
    term = term.strip()
    if match := _SET.match(term):
        key, op, values = match[1], match[2], {v.strip() for v in match[3].split(",")}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (s.strip() for s in term.split(op, 1))
            if op == "!=":
                return lambda labels: labels.get(key) != value
            return lambda labels: labels.get(key) == value
    if term.startswith("!"):
        return lambda labels: term[1:].strip() not in labels
    return lambda labels: term in labels


def label_matcher(selector: str | None) -> Callable[[Obj], bool]:
    """``=``, ``==``, ``!=``, ``in``, ``notin``, ``key`` and ``!key``, comma-separated."""
    requirements = [_requirement(t) for t in _split_outside_parens(selector or "")]
    return lambda obj: all(r(obj["metadata"].get("labels") or {}) for r in requirements)


def _field(obj: Obj, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


def field_matcher(selector: str | None) -> Callable[[Obj], bool]:
    """``metadata.name=x``, ``status.phase!=Running``... (equality only, as the server)."""
    terms = []
    for term in _split_outside_parens(selector or ""):
        negate = "!=" in term
        key, value = re.split(r"!=|==|=", term, maxsplit=1)
        terms.append((key.strip(), value.strip(), negate))
    return lambda obj: all((_field(obj, k) == v) != neg for k, v, neg in terms)


# -- the store ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    rv: int
    kind: str
    type: str
    obj: Obj


class Store:
    """Objects by (kind, namespace, name) behind one condition variable."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.rv = 1000
        self.objects: dict[tuple[str, str, str], Obj] = {}
        self.history: deque[Event] = deque(maxlen=HISTORY)
        self.oldest = self.rv  # watches from before this resourceVersion are expired

    def _event(self, kind: str, type_: str, obj: Obj) -> None:
        if len(self.history) == self.history.maxlen:
            self.oldest = self.history[0].rv
        self.history.append(Event(self.rv, kind, type_, copy.deepcopy(obj)))
        self.cond.notify_all()

    def _bump(self, obj: Obj) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def create(self, kind: str, namespace: str, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        with self.cond:
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            name = meta.get("name")
            if not name:
                raise ApiError(422, "Invalid", f"{kind}.metadata.name: Required value")
            key = (kind, namespace, name)
            if key in self.objects:
                raise ApiError(409, "AlreadyExists", f'{kind}s "{name}" already exists')
            meta.update(namespace=namespace, creationTimestamp=now())
            meta.setdefault("uid", str(uuid.uuid4()))  # a Job's is set by its defaults
            self._bump(obj)
            self.objects[key] = obj
            self._event(kind, "ADDED", obj)
            return copy.deepcopy(obj)

    def get(self, kind: str, namespace: str, name: str) -> Obj:
        with self.cond:
            return copy.deepcopy(self._live(kind, namespace, name))

    def _live(self, kind: str, namespace: str, name: str) -> Obj:
        try:
            return self.objects[(kind, namespace, name)]
        except KeyError:
            raise ApiError(404, "NotFound", f'{kind}s "{name}" not found') from None

    def update(self, kind: str, namespace: str, name: str, change: Callable[[Obj], Any]) -> Obj:
        """Apply ``change`` to the stored object; an event only if it changed something."""
        with self.cond:
            obj = self._live(kind, namespace, name)
            before = copy.deepcopy(obj)
            change(obj)
            if obj != before:
                self._bump(obj)
                self._event(kind, "MODIFIED", obj)
            return copy.deepcopy(obj)

    def delete(self, kind: str, namespace: str, name: str) -> Obj:
        with self.cond:
            obj = self.objects.pop((kind, namespace, name), None)
            if obj is None:
                raise ApiError(404, "NotFound", f'{kind}s "{name}" not found')
            self._bump(obj)
            self._event(kind, "DELETED", obj)
            return copy.deepcopy(obj)

    def list(
        self, kind: str, namespace: str | None, labels: str | None = None, fields: str | None = None
    ) -> tuple[list[Obj], str]:
        match_labels, match_fields = label_matcher(labels), field_matcher(fields)
        with self.cond:
            items = [
                copy.deepcopy(obj)
                for (k, ns, _), obj in sorted(self.objects.items())
                if k == kind and namespace in (None, ns) and match_labels(obj)
                if match_fields(obj)
            ]
            return items, str(self.rv)

    def compact(self) -> None:
        """Forget the event history, as etcd compaction after one more write does: a watch
        from any resourceVersion served so far gets 410 Gone."""
        with self.cond:
            self.rv += 1
            self.history.clear()
            self.oldest = self.rv

    def watch(
        self,
        kind: str,
        namespace: str | None,
        since: str | None,
        labels: str | None,
        fields: str | None,
        until: float,
        closed: threading.Event,
    ) -> Iterator[tuple[str, Obj]]:
        """Events after ``since`` (synthetic ADDED for all objects when none is given), then live
        ones until ``until`` (monotonic) or ``closed``; a too-old ``since`` yields one 410."""
        match_labels, match_fields = label_matcher(labels), field_matcher(fields)

        def wanted(event: Event) -> bool:
            return (
                event.kind == kind
                and namespace in (None, event.obj["metadata"].get("namespace"))
                and match_labels(event.obj)
                and match_fields(event.obj)
            )

        with self.cond:
            if since in (None, "", "0"):
                items, rv = self.list(kind, namespace, labels, fields)
                start = int(rv)
                pending = [("ADDED", obj) for obj in items]
            else:
                start = int(since)  # type: ignore[arg-type]
                if start < self.oldest:
                    gone = ApiError(410, "Expired", f"too old resource version: {start}")
                    yield "ERROR", gone.status()
                    return
                pending = [(e.type, e.obj) for e in self.history if e.rv > start and wanted(e)]
                start = self.rv
        yield from pending
        while not closed.is_set():
            with self.cond:
                fresh = [e for e in self.history if e.rv > start]
                if not fresh:
                    left = until - time.monotonic()
                    if left <= 0:
                        return
                    self.cond.wait(min(left, 0.5))
                    continue
                start = fresh[-1].rv
            for event in fresh:
                if wanted(event):
                    yield event.type, copy.deepcopy(event.obj)
