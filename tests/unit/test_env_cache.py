"""The env cache with a fake builder: one build per key, no partial env reused, leases, gc."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from runner.envs import cache
from runner.envs.cache import (
    MARKER,
    ensure_env,
    env_dir,
    env_key,
    lease,
    load_resolution,
    read_usage,
    record_use,
    save_resolution,
)
from runner.envs.inventory import collect_garbage, list_envs, parse_age
from runner.errors import EnvBuildError

KEY = env_key("uv", "six==1.16.0\n", "cpython-3.11.7", "linux-x86_64")


class FakeBuilder:
    """Makes a minimal env: bin/python pointing at this interpreter."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.calls = 0
        self.delay = delay
        self.fail = fail
        self._lock = threading.Lock()

    def __call__(self, tmp: Path) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
        (tmp / "bin").mkdir()
        (tmp / "bin" / "python").symlink_to(sys.executable)
        time.sleep(self.delay)
        if self.fail:
            raise EnvBuildError("install failed", log="full log")
        return {"manager": "uv", "python": "3.11.7", "lock": "six==1.16.0\n"}


def no_progress(message: str) -> None:
    pass


def build(key: str = KEY, builder: FakeBuilder | None = None) -> tuple[Path, dict[str, Any], bool]:
    return ensure_env("uv", key, builder or FakeBuilder(), progress=no_progress)


def test_key_is_stable_and_covers_every_input() -> None:
    base = ("uv", "six==1.16.0\n", "cpython-3.11.7", "linux-x86_64")
    assert env_key(*base) == KEY and len(KEY) == 64
    for index, other in enumerate(("local", "six==1.17.0\n", "cpython-3.11.8", "macosx")):
        changed = list(base)
        changed[index] = other
        assert env_key(*changed) != KEY


def test_first_call_builds_second_reuses() -> None:
    builder = FakeBuilder()
    path, marker, built = build(builder=builder)
    assert built and builder.calls == 1 and path == env_dir("uv", KEY)
    assert marker["key"] == KEY and marker["python"] == "3.11.7"
    again, _marker, built_again = build(builder=builder)
    assert again == path and not built_again and builder.calls == 1


def test_marker_is_written_last_and_the_dir_renamed_into_place() -> None:
    seen: dict[str, bool] = {}

    def builder(tmp: Path) -> dict[str, Any]:
        seen["final_exists_during_build"] = env_dir("uv", KEY).exists()
        seen["marker_during_build"] = (tmp / MARKER).exists()
        return FakeBuilder()(tmp)

    path, _marker, _built = ensure_env("uv", KEY, builder, progress=no_progress)
    assert seen == {"final_exists_during_build": False, "marker_during_build": False}
    assert json.loads((path / MARKER).read_text())["key"] == KEY
    assert not list(path.parent.glob(".tmp-*"))


def test_failed_build_leaves_nothing_and_the_next_call_rebuilds() -> None:
    with pytest.raises(EnvBuildError, match="install failed"):
        build(builder=FakeBuilder(fail=True))
    assert not env_dir("uv", KEY).exists()
    assert not list(env_dir("uv", KEY).parent.glob(".tmp-*"))
    builder = FakeBuilder()
    assert build(builder=builder)[2] and builder.calls == 1


def test_leftovers_of_a_killed_build_are_garbage() -> None:
    final = env_dir("uv", KEY)
    killed = final.parent / f".tmp-{final.name}-deadbeef"
    (killed / "lib").mkdir(parents=True)
    final.mkdir()  # a final dir without a marker (e.g. copied in by hand)
    (final / "junk").write_text("x")
    builder = FakeBuilder()
    path, _marker, built = build(builder=builder)
    assert built and builder.calls == 1
    assert not killed.exists() and not (path / "junk").exists()


@pytest.mark.parametrize("damage", ["marker", "interpreter", "key"])
def test_a_damaged_env_is_rebuilt(damage: str) -> None:
    path, _marker, _built = build()
    if damage == "marker":
        (path / MARKER).unlink()
    elif damage == "interpreter":  # e.g. the base Python was uninstalled
        (path / "bin" / "python").unlink()
        (path / "bin" / "python").symlink_to(path / "gone")
    else:
        data = json.loads((path / MARKER).read_text())
        (path / MARKER).write_text(json.dumps({**data, "key": "0" * 64}))
    builder = FakeBuilder()
    assert build(builder=builder)[2] and builder.calls == 1


def test_concurrent_cold_requests_build_once() -> None:
    builder = FakeBuilder(delay=0.3)
    results: list[tuple[Path, dict[str, Any], bool]] = []
    threads = [
        threading.Thread(target=lambda: results.append(build(builder=builder))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert builder.calls == 1
    assert sorted(built for _p, _m, built in results) == [False, False, False, True]
    assert len({path for path, _m, _b in results}) == 1


def test_waiting_for_another_build_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    messages: list[str] = []
    builder = FakeBuilder(delay=0.5)
    first = threading.Thread(target=lambda: build(builder=builder))
    first.start()
    time.sleep(0.15)
    ensure_env("uv", KEY, builder, progress=messages.append)
    first.join()
    assert messages == [f"waiting for another process building environment {KEY[:12]}"]


def test_lock_timeout_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "LOCK_TIMEOUT", 0.2)
    builder = FakeBuilder(delay=1.0)
    first = threading.Thread(target=lambda: build(builder=builder))
    first.start()
    time.sleep(0.15)
    with pytest.raises(
        EnvBuildError, match=f"timed out after 0s waiting for the build of environment {KEY[:12]}"
    ):
        build(builder=builder)
    first.join()


def test_usage_log_records_runs_and_survives_a_torn_line() -> None:
    path, _marker, _built = build()
    record_use(path, "run-1")
    record_use(path)
    with open(path / cache.USAGE, "a") as log:
        log.write('{"at": 1, "run_')  # a crash mid-write
    record_use(path, "lost-with-the-torn-line")
    record_use(path, "run-2")
    record_use(path, "run-1")
    last, runs = read_usage(path)
    assert runs == ["run-1", "run-2"]
    assert last is not None and abs(last - time.time()) < 5


def test_resolutions_round_trip() -> None:
    assert load_resolution("a" * 64) is None
    save_resolution("a" * 64, {"key": KEY})
    assert load_resolution("a" * 64) == {"key": KEY}


# --- leases and gc ---------------------------------------------------------------------


def test_gc_never_removes_a_leased_env() -> None:
    path, _marker, _built = build()
    with lease(path):
        assert [info.in_use for info in list_envs()] == [True]
        report = collect_garbage(older_than=None, remove_all=True)
        assert [info.key for info in report.in_use] == [KEY] and not report.removed
        assert (path / MARKER).exists()
    report = collect_garbage(older_than=None, remove_all=True)
    assert [info.key for info in report.removed] == [KEY]
    assert not path.exists() and list_envs() == []


def test_gc_skips_an_env_whose_build_lock_is_held() -> None:
    import filelock

    path, _marker, _built = build()
    with filelock.FileLock(str(cache.lock_file("uv", KEY))):
        assert collect_garbage(older_than=None, remove_all=True).removed == []
    assert path.exists()


def test_lease_on_an_env_removed_by_gc_is_a_clear_error() -> None:
    path, _marker, _built = build()
    collect_garbage(older_than=None, remove_all=True)
    with pytest.raises(EnvBuildError) as err, lease(path):
        pass
    assert err.value.message == (
        f"environment {path.name[:12]} was removed (runner env gc?) before the run could use it"
    )


def test_gc_by_age_and_dry_run() -> None:
    old, _m, _b = build()
    new_key = env_key("uv", "idna\n", "cpython-3.11.7", "linux-x86_64")
    new, _m, _b = build(new_key)
    later = time.time() + 3 * 86400
    os.utime(old)  # age comes from the usage log and marker, not mtimes
    record_use(new)
    dry = collect_garbage(older_than=parse_age("2d"), dry_run=True, now=later)
    assert {info.key for info in dry.removed} == {KEY, new_key} and old.exists()
    report = collect_garbage(older_than=parse_age("4d"), now=later)
    assert report.removed == [] and old.exists() and new.exists()
    report = collect_garbage(older_than=parse_age("1d"), now=later)
    assert {info.key for info in report.removed} == {KEY, new_key}
    assert report.freed > 0


def test_gc_removes_partial_builds_but_not_a_running_one() -> None:
    import filelock

    final = env_dir("uv", KEY)
    killed = final.parent / f".tmp-{final.name}-deadbeef"
    killed.mkdir(parents=True)
    running_final = env_dir("uv", "f" * 64)
    running = running_final.parent / f".tmp-{running_final.name}-cafecafe"
    running.mkdir()
    trash = final.parent / f".trash-{final.name}-00000000"
    trash.mkdir()
    old_scratch = cache.envs_root() / ".resolve-old"
    old_scratch.mkdir()
    os.utime(old_scratch, (time.time() - 2 * 86400,) * 2)
    new_scratch = cache.envs_root() / ".resolve-new"
    new_scratch.mkdir()
    with filelock.FileLock(str(cache.lock_file("uv", "f" * 64))):
        report = collect_garbage(older_than=None)
    assert sorted(report.garbage) == sorted([killed, trash, old_scratch])
    assert not killed.exists() and not trash.exists() and running.exists()
    assert not old_scratch.exists() and new_scratch.exists()


def test_gc_all_forgets_resolutions() -> None:
    build()
    save_resolution("b" * 64, {"key": KEY})
    save_resolution("c" * 64, {"key": "0" * 64})  # points at nothing
    collect_garbage(older_than=None)
    assert load_resolution("b" * 64) is not None and load_resolution("c" * 64) is None
    collect_garbage(older_than=None, remove_all=True)
    assert load_resolution("b" * 64) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30d", 30 * 86400),
        ("12h", 43200),
        ("90m", 5400),
        ("45s", 45),
        ("2w", 1209600),
        ("7", 7 * 86400),
        ("0", 0),
    ],
)
def test_parse_age(text: str, seconds: float) -> None:
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-1d", "nand"])
def test_parse_age_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="invalid age"):
        parse_age(text)


# --- health check of a new env (no uv needed) -------------------------------------------


def test_health_check_finds_a_missing_distribution() -> None:
    from runner.envs.python.venv import _check_files

    logs: list[str] = []
    # pytest is complete in this interpreter; an unknown name is reported as not installed
    assert _check_files(sys.executable, ["pytest"], logs) == []
    assert _check_files(sys.executable, ["no-such-dist-xyz"], logs) == [
        "no-such-dist-xyz: not installed"
    ]
    assert logs[0].startswith("$ health check")


def test_health_check_interpreter_failures(tmp_path: Path) -> None:
    from runner.envs.python.venv import _check_files

    assert _check_files("/bin/false", [], []) == ["the interpreter exited with 1"]
    assert _check_files("/bin/echo", [], [])[0].startswith("unexpected output: ")
    with pytest.raises(EnvBuildError) as err:
        _check_files(str(tmp_path / "missing-python"), [], [])
    assert err.value.message.startswith(
        "the new environment failed its health check: the interpreter does not run:"
    )


def test_interpreter_download_failure_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.envs.python import interpreters

    monkeypatch.setenv("RUNNER_ALLOW_PYTHON_DOWNLOADS", "1")
    monkeypatch.setattr(interpreters, "list_interpreters", lambda request=None: [])
    monkeypatch.setattr(
        interpreters, "capture_uv", lambda args, cwd, env: (2, "", "error: no network\n")
    )
    with pytest.raises(EnvBuildError) as err:
        interpreters.find_interpreter("3.99")
    assert err.value.message == "cannot download Python 3.99: no network"
