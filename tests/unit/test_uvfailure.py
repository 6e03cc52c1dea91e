"""Reading uv's log of a failed step: headline, failed package, causes, then the last lines."""

from __future__ import annotations

from runner.envs.python.uvfailure import failure_summary

# uv's own layout on a terminal (the tests in tests/integration run it in a pipe)
ON_A_TERMINAL = """\
$ uv pip install --python /envs/x/bin/python --no-deps -r /envs/x/.runner-lock.txt
Resolved 3 packages in 2ms
  \u00d7 Failed to build `scikit-learn==1.0.2`
  ├─▶ The build backend returned an error
  ╰─▶ Call to `setuptools.build_meta.build_wheel` failed (exit status: 1)

      [stderr]
      error: Microsoft Visual C++ 14.0 or greater is required
      sklearn/_build_utils/__init__.py:80: error
          compile failed

      hint: This usually indicates a problem with the package or the build environment.
"""


def test_the_headline_comes_first_then_package_causes_and_the_tail() -> None:
    assert failure_summary(ON_A_TERMINAL).splitlines() == [
        "Failed to build `scikit-learn==1.0.2`",
        "  failed package: scikit-learn==1.0.2",
        "  because: The build backend returned an error",
        "  because: Call to `setuptools.build_meta.build_wheel` failed (exit status: 1)",
        "  last lines of the log:",
        "    [stderr]",
        "    error: Microsoft Visual C++ 14.0 or greater is required",
        "    sklearn/_build_utils/__init__.py:80: error",
        "        compile failed",
        "    hint: This usually indicates a problem with the package or the build environment.",
    ]


def test_a_download_failure_names_its_package() -> None:
    log = "error: Failed to download `six==1.17.0`\n  cause: Hash mismatch for `six==1.17.0`\n"
    assert failure_summary(log).splitlines() == [
        "Failed to download `six==1.17.0`",
        "  failed package: six==1.17.0",
        "  because: Hash mismatch for `six==1.17.0`",
    ]


def test_a_pin_without_a_wheel_for_this_python_is_named() -> None:
    # uv's words for MLflow's examples/hyperparam (tensorflow==2.10.0) on Python 3.11
    log = (
        "error: No solution found when resolving dependencies\n"
        "  cause: Because tensorflow==2.10.0 has no wheels with a matching Python ABI tag "
        "(e.g., `cp311`) and you require tensorflow==2.10.0, we can conclude that your "
        "requirements are unsatisfiable.\n"
    )
    assert failure_summary(log).splitlines()[:2] == [
        "No solution found when resolving dependencies",
        "  failed package: tensorflow==2.10.0",
    ]


def test_without_a_headline_the_last_lines_are_shown() -> None:
    log = "$ uv venv x\n" + "".join(f"line {i}\n" for i in range(30))
    assert failure_summary(log).splitlines() == [f"line {i}" for i in range(20, 30)]
