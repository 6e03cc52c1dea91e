"""A run's files and output log sent to the tracking server its store is, once the run ends."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import RunnerError
from runner.execution.interrupts import Cancelled

if TYPE_CHECKING:
    from runner.store.rest import RestStore

UPLOAD_WARNING_TAG = "runner.upload_warning"
Progress = Callable[[str], None]


@dataclass
class _Outcome:
    """What did not reach the server, and why (the first reason is what the user is told)."""

    missed: list[str] = field(default_factory=list)
    first_reason: str = ""

    def miss(self, what: str, reason: str) -> None:
        self.give_up([what], reason)

    def give_up(self, left: list[str], reason: str) -> None:
        self.missed += left
        self.first_reason = self.first_reason or reason


def upload_run_outputs(
    store: RestStore, run_id: str, folder: Path, with_files: bool, progress: Progress
) -> None:
    """Send the run's own files in its ``folder`` (``RUN_FILES``: its output log, diff...)
    and, ``with_files``, every file under its ``files/`` (same layout) to the server,
    replacing what was sent before. Best effort: what cannot be sent is a warning line and the run's
    ``runner.upload_warning`` tag, never an error; a ^C skips the rest. Nothing to send, no
    request."""
    from runner.execution.artifacts import FILES

    files, unreadable = artifact_files(folder / FILES) if with_files else ([], [])
    outcome = _Outcome()
    for name in unreadable:
        outcome.miss(name, f"the folder {name} cannot be read")
    if files:
        count = f"{len(files)} artifact file{'s' if len(files) > 1 else ''}"
        progress(f"uploading {count} to the tracking server {store.base_url}")
    _send_all(_uploads(store, run_id, folder, files), outcome)
    if outcome.missed:
        with suppress(KeyboardInterrupt, Cancelled):
            _warn(store, run_id, outcome, folder, progress)


def artifact_files(root: Path) -> tuple[list[tuple[str, Path]], list[str]]:
    """The regular files under ``root`` as (relative posix path, local path), sorted, and
    the folders that could not be read. A symlink leading outside ``root`` is left out (it
    is no artifact of the run), and a folder reached again through a link is walked once."""
    if not root.is_dir():
        return [], []
    base = root.resolve()
    found: list[tuple[str, Path]] = []
    unreadable: list[str] = []
    pending: list[tuple[Path, str, tuple[Path, ...]]] = [(root, "", (base,))]
    while pending:
        folder, prefix, above = pending.pop()
        try:
            children = sorted(folder.iterdir())
        except OSError:
            unreadable.append(prefix.rstrip("/") or ".")
            continue
        for child in children:
            name = prefix + child.name
            try:
                resolved = child.resolve()
            except (OSError, RuntimeError):  # a symlink loop leads nowhere
                continue
            if not resolved.is_relative_to(base):
                continue
            if child.is_dir():
                if resolved not in above:  # a link to a folder above it would never end
                    pending.append((child, name + "/", (*above, resolved)))
            elif child.is_file():  # not a FIFO or socket: reading one could block
                found.append((name, child))
    return sorted(found), unreadable


Upload = tuple[str, Callable[[], int]]  # what is sent, and the call that sends it


def _uploads(
    store: RestStore, run_id: str, folder: Path, files: list[tuple[str, Path]]
) -> list[Upload]:
    """The run's own files, the log first (what `runner runs logs` shows), then its
    artifact files."""
    from runner.home import RUN_FILES

    sent: list[Upload] = [
        (name, partial(store.upload_run_file, run_id, name, folder / name))
        for name in RUN_FILES
        if (folder / name).is_file()
    ]
    sent += [(path, partial(store.upload_artifact, run_id, path, local)) for path, local in files]
    return sent


def _send_all(uploads: list[Upload], outcome: _Outcome) -> None:
    """Each upload in turn: one the server refuses, or one that cannot be read, costs no
    other; a server gone or refusing us (its token) ends them, as does a ^C."""
    from runner.store.rest import UploadRefused

    for index, (what, upload) in enumerate(uploads):
        try:
            upload()
        except UploadRefused as exc:
            outcome.miss(what, exc.message)
        except OSError as exc:
            outcome.miss(what, f"{what} cannot be read: {exc.strerror or exc!r}")
        except RunnerError as exc:
            outcome.give_up([name for name, _upload in uploads[index:]], exc.message)
            return
        except Exception as exc:  # e.g. a broken answer requests could not read
            outcome.give_up([name for name, _upload in uploads[index:]], repr(exc))
            return
        except (KeyboardInterrupt, Cancelled):
            reason = "interrupted before the upload finished"
            outcome.give_up([name for name, _upload in uploads[index:]], reason)
            return


def _warn(store: RestStore, run_id: str, outcome: _Outcome, kept: Path, progress: Progress) -> None:
    count = len(outcome.missed)
    what = outcome.missed[0] if count == 1 else f"{count} of the run's files"
    text = f"{what} did not reach the tracking server {store.base_url}: {outcome.first_reason}"
    progress(f"warning: {text} (tag {UPLOAD_WARNING_TAG}); this machine keeps them in {kept}")
    try:
        store.set_tags(run_id, {UPLOAD_WARNING_TAG: text})
    except RunnerError as exc:  # the server that refused the files may refuse this too
        progress(
            f"warning: the run's {UPLOAD_WARNING_TAG} tag could not be recorded: {exc.message}"
        )


SHIP_CHUNK = 1024 * 1024  # bytes of the log sent in one request at most


class LogShipper:
    """While a run goes on, what its output log gained is added to the server's copy, so
    ``runner runs logs --follow`` and the web UI on other machines see it as it is written.
    Best effort: a part that does not go is sent again on a later call."""

    def __init__(self, store: RestStore, run_id: str, log: Path) -> None:
        self.store, self.run_id, self.log = store, run_id, log
        self.offset = 0  # how much of the log the server has

    def ship(self) -> None:
        """Send what the log gained since the last call (at most a few chunks)."""
        from runner.home import RUN_FILES

        for _ in range(4):  # a burst of output catches up over a few ticks
            try:
                with open(self.log, "rb") as f:
                    f.seek(self.offset)
                    data = f.read(SHIP_CHUNK)
            except FileNotFoundError:
                return
            if not data:
                return
            self.offset = self.store.append_run_file(self.run_id, RUN_FILES[0], data, self.offset)
