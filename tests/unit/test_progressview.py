"""The progress view: plain lines in a pipe; on a terminal, steps live until the next message."""

from __future__ import annotations

import io
import re

from runner.progressview import ProgressView, is_step


def test_steps_are_messages_whose_first_word_ends_in_ing() -> None:
    assert is_step("resolving 3 requirements for Python 3.11")
    assert is_step("solving 4 specs")  # any manager's own steps, e.g. conda's
    assert not is_step("resolved 12 packages")
    assert not is_step("environment ab12 ready in 0.4s")
    assert not is_step("warning: pending is not a step")


def test_a_pipe_gets_one_plain_line_per_message() -> None:
    out = io.StringIO()
    view = ProgressView(out, live=False)
    for message in ("resolving 1 requirements", "resolved 1 packages", "warning: odd\x1b[2J"):
        view(message)
    view.started("run r1 (main) started: python train.py")
    view.close()
    assert out.getvalue().splitlines() == [
        "runner: resolving 1 requirements",
        "runner: resolved 1 packages",
        "runner: warning: odd\\x1b[2J",  # terminal escapes from a project are shown, not obeyed
        "runner: run r1 (main) started: python train.py",
    ]
    assert view.entry_point_started


def test_a_terminal_sees_a_live_step_kept_with_its_duration() -> None:
    out = io.StringIO()
    view = ProgressView(out, live=True)
    view("installing 2 packages")
    view("installed 2 packages")
    view.started("run r1 (main) started: x")
    view("checking environment")  # after the start: a plain line, the output is the entry point's
    view.close()
    text = out.getvalue()
    assert re.fullmatch(
        r"(\r\x1b\[Krunner: installing 2 packages \d+\.\ds)+"
        r"\r\x1b\[Krunner: installing 2 packages \(\d+\.\ds\)\n"
        r"runner: installed 2 packages\n"
        r"runner: run r1 \(main\) started: x\n"
        r"runner: checking environment\n",
        text,
    ), repr(text)


def test_close_ends_a_live_step_so_an_error_starts_on_its_own_line() -> None:
    out = io.StringIO()
    view = ProgressView(out, live=True)
    view("resolving 1 requirements")
    view.close()
    assert out.getvalue().endswith(")\n") and not view.entry_point_started
