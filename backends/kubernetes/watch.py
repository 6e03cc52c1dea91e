"""List, then watch from the list's resourceVersion; resume on expiry, list again on 410."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

WATCH_SECONDS = 60  # a watch is re-opened at least this often
RETRY_SECONDS = 0.5  # after a dropped connection


def follow(
    lister: Callable[..., Any],
    namespace: str,
    on_event: Callable[[str, Any], None],
    done: threading.Event,
    opened: list[Any],
    **selectors: str,
) -> None:
    """List, then watch from the list's resourceVersion until ``done``; resume on expiry or a
    dropped connection, list again on 410 Gone. Each open Watch is put in ``opened``, so the
    caller can stop it (a thread blocked in a read must not outlive the run)."""
    import urllib3.exceptions
    from kubernetes import watch
    from kubernetes.client.rest import ApiException

    version: str | None = None
    while not done.is_set():
        try:
            if version is None:
                listed = lister(namespace, **selectors)
                for item in listed.items:
                    on_event("ADDED", item)
                version = listed.metadata.resource_version
            watcher = watch.Watch()
            opened.append(watcher)
            stream = watcher.stream(
                lister,
                namespace,
                resource_version=version,
                timeout_seconds=WATCH_SECONDS,
                **selectors,
            )
            for event in stream:
                if event["type"] == "ERROR":
                    raise ApiException(status=event["raw_object"].get("code", 500))
                version = event["object"].metadata.resource_version
                on_event(event["type"], event["object"])
                if done.is_set():
                    return
        except ApiException as exc:
            if exc.status != 410:
                raise
            version = None  # compacted: the list says where we are now
        except (urllib3.exceptions.HTTPError, OSError):
            done.wait(RETRY_SECONDS)  # dropped: resume from the last version seen
