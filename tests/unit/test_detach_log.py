"""The detaching CLI reads the supervisor's progress from supervisor.log as it grows."""

from __future__ import annotations

from pathlib import Path

from runner.execution.detach import LogTail


def test_only_whole_progress_lines_are_passed_on(tmp_path: Path) -> None:
    log = tmp_path / "supervisor.log"
    tail = LogTail(log)
    assert tail.progress_lines() == []  # the supervisor has not written it yet
    log.write_bytes(b"runner: resolving 3 requirements\nTraceback (most recent call last):\nrun")
    assert tail.progress_lines() == ["resolving 3 requirements"]
    with open(log, "ab") as out:  # the rest of a line written in two parts
        out.write(b"ner: installing 3 packages\nrunner: \xff done\n")
    assert tail.progress_lines() == ["installing 3 packages", "\ufffd done"]
    assert tail.progress_lines() == []
