"""Names and values reach a terminal with control characters escaped, and --json is strict JSON."""

from __future__ import annotations

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from runner.display import json_safe, printable, strict_json
from runner.status import RunStatus
from runner.store import NewRun
from runner.store.open import open_store
from tests.helpers import run_cli


def _strict_loads(text: str) -> object:
    """json.loads that refuses NaN and Infinity, as strict JSON parsers do."""

    def refuse(name: str) -> object:
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


FORGED = "ok\n0123456789ab  FINISHED  Default  main\x1b[2J\rx"


def _run_named(name: str) -> str:
    store = open_store()
    run_id = store.create_run(
        NewRun(
            experiment="Default",
            entry_point="main",
            command="true",
            backend="local",
            parameters={"p": "a\nb: c"},
            source={},
            environment={"manager": "local"},
            run_name=name,
        )
    )
    store.log_metrics(run_id, [("inf", math.inf, 0, 1), ("minus", -math.inf, 0, 1)])
    store.finish_run(run_id, RunStatus.FAILED, 1, "reason\x1b]0;title\x07")
    return run_id


def test_runs_list_escapes_what_could_forge_a_line() -> None:
    _run_named(FORGED)
    result = run_cli("runs", "list")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2  # the header and one run, nothing forged
    assert "ok\\x0a0123456789ab  FINISHED  Default  main\\x1b[2J\\x0dx" in result.stdout
    assert "\x1b" not in result.stdout and "\r" not in result.stdout


def test_runs_show_keeps_each_value_to_its_own_field() -> None:
    run_id = _run_named(FORGED)
    result = run_cli("runs", "show", run_id)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    keys = [line.split(":")[0] for line in result.stdout.splitlines() if not line.startswith(" ")]
    assert keys.count("status") == 1 and "0123456789ab  FINISHED  Default  main" not in keys
    assert "  p: a\n      b: c" in result.stdout  # a continuation line, deeper than any key


def test_json_is_strict_non_finite_metrics_become_strings() -> None:
    run_id = _run_named("n")
    shown = run_cli("runs", "show", run_id, "--json")
    listed = run_cli("runs", "list", "--json")
    for text in (shown.stdout, listed.stdout):
        assert "Infinity" in text
        _strict_loads(text)
    assert json.loads(shown.stdout)["metrics"] == {"inf": "Infinity", "minus": "-Infinity"}


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_printable_never_lets_a_control_character_through(text: str) -> None:
    shown = printable(text)
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in shown)
    multi = printable(text, one_line=False)
    assert all(ch in "\t\n" for ch in multi if ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F)


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.floats() | st.text() | st.integers() | st.none(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))  # fmt: skip
def test_strict_json_always_parses_as_strict_json(value: object) -> None:
    assert _strict_loads(strict_json(value)) == json_safe(value)  # json_safe leaves no NaN
