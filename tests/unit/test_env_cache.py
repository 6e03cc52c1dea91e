"""The env cache with a small real manager: one build per key, health, leases, gc."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from runner.envs import cache
from runner.envs.base import Activation, BaseEnvManager, EnvLock, Progress
from runner.envs.cache import (
    MARKER,
    CachedEnv,
    ensure_env,
    env_dir,
    lease,
    load_resolution,
    read_usage,
    record_use,
    remembered_lock,
    save_resolution,
)
from runner.envs.digest import env_key
from runner.envs.inventory import collect_garbage, list_envs, parse_age
from runner.errors import EnvBuildError

KEY = env_key("fake", "six==1.16.0\n", "cpython-3.11.7", "linux-x86_64")
LOCK = EnvLock(content="six==1.16.0\n", interpreter="cpython-3.11.7", python="3.11.7")


class FakeManager(BaseEnvManager):
    """Builds a minimal env: bin/python pointing at this interpreter; healthy while it runs."""

    name = "fake"

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.calls = 0
        self.delay = delay
        self.fail = fail
        self._lock = threading.Lock()

    def build(self, lock: EnvLock, prefix: Path, *, progress: Progress) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
        (prefix / "bin").mkdir()
        (prefix / "bin" / "python").symlink_to(sys.executable)
        time.sleep(self.delay)
        if self.fail:
            raise EnvBuildError("install failed", log="full log")
        return {"interpreter": sys.executable}

    def health(self, prefix: Path, marker: Mapping[str, Any]) -> str | None:
        python = prefix / "bin" / "python"
        return None if python.exists() else f"its interpreter {os.readlink(python)} is gone"


def no_progress(message: str) -> None:
    pass


def build(
    key: str = KEY, manager: FakeManager | None = None, progress: Progress = no_progress
) -> CachedEnv:
    return ensure_env(manager or FakeManager(), key, LOCK, progress=progress)


def test_key_is_stable_and_covers_every_input() -> None:
    base = ("fake", "six==1.16.0\n", "cpython-3.11.7", "linux-x86_64")
    assert env_key(*base) == KEY and len(KEY) == 64
    for index, other in enumerate(("local", "six==1.17.0\n", "cpython-3.11.8", "macosx")):
        changed = list(base)
        changed[index] = other
        assert env_key(*changed) != KEY


def test_first_call_builds_second_reuses() -> None:
    manager = FakeManager()
    env = build(manager=manager)
    assert env.built and manager.calls == 1 and env.path == env_dir("fake", KEY)
    assert env.marker["key"] == KEY and env.marker["python"] == "3.11.7"
    assert env.marker["facts"] == {"interpreter": sys.executable} and env.rebuilt is None
    again = build(manager=manager)
    assert again.path == env.path and not again.built and manager.calls == 1


def test_marker_is_written_last_and_the_dir_renamed_into_place() -> None:
    seen: dict[str, bool] = {}

    class Watching(FakeManager):
        def build(self, lock: EnvLock, prefix: Path, *, progress: Progress) -> dict[str, Any]:
            seen["final_exists_during_build"] = env_dir("fake", KEY).exists()
            seen["marker_during_build"] = (prefix / MARKER).exists()
            return super().build(lock, prefix, progress=progress)

    path = build(manager=Watching()).path
    assert seen == {"final_exists_during_build": False, "marker_during_build": False}
    assert json.loads((path / MARKER).read_text())["key"] == KEY
    assert not list(path.parent.glob(".tmp-*"))


def test_failed_build_leaves_nothing_and_the_next_call_rebuilds() -> None:
    with pytest.raises(EnvBuildError, match="install failed"):
        build(manager=FakeManager(fail=True))
    assert not env_dir("fake", KEY).exists()
    assert not list(env_dir("fake", KEY).parent.glob(".tmp-*"))
    manager = FakeManager()
    assert build(manager=manager).built and manager.calls == 1


def test_leftovers_of_a_killed_build_are_garbage() -> None:
    final = env_dir("fake", KEY)
    killed = final.parent / f".tmp-{final.name}-deadbeef"
    (killed / "lib").mkdir(parents=True)
    final.mkdir()  # a final dir without a marker (e.g. copied in by hand)
    (final / "junk").write_text("x")
    manager = FakeManager()
    env = build(manager=manager)
    assert env.built and manager.calls == 1
    assert not killed.exists() and not (env.path / "junk").exists()


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("marker", "its marker is missing or unreadable"),
        ("key", "its marker names another key"),
        ("interpreter", "its interpreter {path}/gone is gone"),  # the base Python was removed
    ],
)
def test_an_unusable_env_is_rebuilt_and_says_why(damage: str, reason: str) -> None:
    path = build().path
    if damage == "marker":
        (path / MARKER).unlink()
    elif damage == "interpreter":
        (path / "bin" / "python").unlink()
        (path / "bin" / "python").symlink_to(path / "gone")
    else:
        data = json.loads((path / MARKER).read_text())
        (path / MARKER).write_text(json.dumps({**data, "key": "0" * 64}))
    manager, messages = FakeManager(), []
    env = build(manager=manager, progress=messages.append)
    why = reason.format(path=path)
    assert env.built and manager.calls == 1 and env.rebuilt == why
    assert messages[0] == f"rebuilding environment {KEY[:12]}: {why}"
    assert (env.path / "bin" / "python").exists()
    assert not list(path.parent.glob(".trash-*"))


def test_a_new_env_that_fails_its_own_health_check_is_not_published() -> None:
    class Broken(FakeManager):
        def health(self, prefix: Path, marker: Mapping[str, Any]) -> str | None:
            return "bin/tool is missing"

    with pytest.raises(EnvBuildError) as err:
        build(manager=Broken())
    assert err.value.message == "the new fake environment is unusable: bin/tool is missing"
    assert err.value.hint == "this is a bug in the 'fake' environment manager"
    assert list(env_dir("fake", KEY).parent.iterdir()) == []


def test_build_progress_ends_with_the_time_it_took() -> None:
    messages: list[str] = []
    build(progress=messages.append)
    assert messages[-1].startswith(f"environment {KEY[:12]} ready in ")


def test_concurrent_cold_requests_build_once() -> None:
    manager = FakeManager(delay=0.3)
    results: list[CachedEnv] = []
    threads = [
        threading.Thread(target=lambda: results.append(build(manager=manager))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert manager.calls == 1
    assert sorted(env.built for env in results) == [False, False, False, True]
    assert len({env.path for env in results}) == 1


def test_waiting_for_another_build_is_reported() -> None:
    messages: list[str] = []
    manager = FakeManager(delay=0.5)
    first = threading.Thread(target=lambda: build(manager=manager))
    first.start()
    time.sleep(0.15)
    build(manager=manager, progress=messages.append)
    first.join()
    assert messages == [f"waiting for another process building environment {KEY[:12]}"]


def test_lock_timeout_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "LOCK_TIMEOUT", 0.2)
    manager = FakeManager(delay=1.0)
    first = threading.Thread(target=lambda: build(manager=manager))
    first.start()
    time.sleep(0.15)
    with pytest.raises(EnvBuildError) as err:
        build(manager=manager)
    first.join()
    assert err.value.message == (
        f"timed out after 0s waiting for the build of environment {KEY[:12]}"
    )
    assert err.value.hint == f"lock: {cache.lock_file('fake', KEY)}"


def test_usage_log_records_runs_and_survives_a_torn_line() -> None:
    path = build().path
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


def test_a_remembered_lock_is_reused_until_refresh_or_invalid() -> None:
    manager, resolved = FakeManager(), []

    def resolve() -> EnvLock:
        resolved.append(1)
        return EnvLock(content=f"six=={len(resolved)}\n", source="resolved")

    def lock(**options: Any) -> EnvLock:
        return remembered_lock(manager, {"spec": "s"}, resolve, **{"refresh": False, **options})

    first = lock()
    assert lock() == first and len(resolved) == 1
    assert lock(refresh=True).content == "six==2\n"
    assert lock(valid=lambda remembered: remembered.content != "six==2\n").content == "six==3\n"
    assert lock().content == "six==3\n" and len(resolved) == 3
    [saved] = (cache.envs_root() / ".resolved").glob("*.json")
    assert json.loads(saved.read_text())["key"] == manager.key(lock())


def test_a_damaged_remembered_lock_is_resolved_again() -> None:
    assert EnvLock.from_json({"content": "x"}) is None
    assert EnvLock.from_json([]) is None
    full = EnvLock("a\n", "cpython-3.11.7", "3.11.7", ("a==1",), "resolved", {"i": "/p"}, ("w",))
    assert EnvLock.from_json(full.to_json()) == EnvLock(**{**vars(full), "warnings": ()})


def test_activation_puts_its_dirs_first_and_never_an_empty_entry() -> None:
    activation = Activation(path=("/env/bin",), variables={"VIRTUAL_ENV": "/env"})
    assert activation.env_vars("/usr/bin") == {"VIRTUAL_ENV": "/env", "PATH": "/env/bin:/usr/bin"}
    assert activation.env_vars("")["PATH"] == "/env/bin"  # an empty entry would mean the cwd
    assert Activation(variables={"A": "1"}).env_vars("/usr/bin") == {"A": "1"}


# --- leases and gc ---------------------------------------------------------------------


def test_gc_never_removes_a_leased_env() -> None:
    path = build().path
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

    path = build().path
    with filelock.FileLock(str(cache.lock_file("fake", KEY))):
        assert collect_garbage(older_than=None, remove_all=True).removed == []
    assert path.exists()


def test_lease_on_an_env_removed_by_gc_is_a_clear_error() -> None:
    path = build().path
    collect_garbage(older_than=None, remove_all=True)
    with pytest.raises(EnvBuildError) as err, lease(path):
        pass
    assert err.value.message == (
        f"environment {path.name[:12]} was removed (runner env gc?) before the run could use it"
    )


def test_gc_by_age_and_dry_run() -> None:
    old = build().path
    new_key = env_key("fake", "idna\n", "cpython-3.11.7", "linux-x86_64")
    new = build(new_key).path
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

    final = env_dir("fake", KEY)
    killed = final.parent / f".tmp-{final.name}-deadbeef"
    killed.mkdir(parents=True)
    running_final = env_dir("fake", "f" * 64)
    running = running_final.parent / f".tmp-{running_final.name}-cafecafe"
    running.mkdir()
    trash = final.parent / f".trash-{final.name}-00000000"
    trash.mkdir()
    old_scratch = cache.envs_root() / ".resolve-old"
    old_scratch.mkdir()
    os.utime(old_scratch, (time.time() - 2 * 86400,) * 2)
    new_scratch = cache.envs_root() / ".resolve-new"
    new_scratch.mkdir()
    with filelock.FileLock(str(cache.lock_file("fake", "f" * 64))):
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
