"""ui-*: the web UI of `runner server` over 10,000 runs and a run with 100,000 metric points:
time to first byte and to the last byte of a page, and the page's load in headless Chromium."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from benchmarks.cases import _common as c
from benchmarks.cases import _ui_store
from benchmarks.harness import Case, Context, Measurement, NotAvailable

RUNS, POINTS = 10_000, 100_000
QUICK_RUNS, QUICK_POINTS = 1_000, 10_000
REQUESTS = 5  # timed requests per round, after one untimed (the first renders templates cold)
PagePath = Callable[[Context], str]


def available() -> str | None:
    if not c.has_module("jinja2") or not c.has_module("runner.ui"):
        return "not available: the web UI (runner.ui, jinja2) is not installed"
    return None


def prepare(ctx: Context) -> None:
    home = ctx.scratch / "home"
    home.mkdir()
    runs, points = (QUICK_RUNS, QUICK_POINTS) if ctx.quick else (RUNS, POINTS)
    ctx.state["long"] = _ui_store.fill(home / "runner.db", runs, points)
    ctx.state["home"] = home


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server(home: Path, port: int) -> subprocess.Popen[bytes]:
    argv = [*c.runner_cmd(), "server", "--port", str(port)]
    log = open(home / "server.log", "ab")  # noqa: SIM115 - closed with the process below
    process = subprocess.Popen(
        argv, env=c.runner_env(home), cwd=home, stdout=log, stderr=log, stdin=subprocess.DEVNULL
    )
    log.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"runner server exited with {process.returncode}")
        try:
            if _get(port, "/api/health")[0] == 200:
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("runner server did not become healthy in 60 s")


def _get(port: int, target: str) -> tuple[int, float, float, int]:
    """(status, seconds to the first byte, seconds to the last byte, bytes) of one GET."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        begun = time.perf_counter()
        conn.request("GET", target)
        answer = conn.getresponse()  # returns once the status line and headers arrived
        first = time.perf_counter()
        body = answer.read()
        last = time.perf_counter()
        return answer.status, first - begun, last - begun, len(body)
    finally:
        conn.close()


def _browser_load_ms(url: str) -> float | None:
    """responseStart to loadEventEnd in headless Chromium, if Debian's chromium is installed."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path and c.has_module("selenium")):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.get(url)  # warm: the browser's own start and the static files' first fetch
        samples = []
        for _ in range(3):
            driver.get(url)
            timing = driver.execute_script(
                "const t = performance.getEntriesByType('navigation')[0];"
                "return [t.requestStart, t.loadEventEnd];"
            )
            samples.append(float(timing[1]) - float(timing[0]))
        return statistics.median(samples)
    finally:
        driver.quit()


def measure(path: PagePath) -> Callable[[Context], Measurement]:
    def run(ctx: Context) -> Measurement:
        port = _free_port()
        server = _server(ctx.state["home"], port)
        try:
            target = path(ctx)
            cold = _get(port, target)
            if cold[0] != 200:
                raise RuntimeError(f"GET {target} answered {cold[0]}")
            timed = [_get(port, target) for _ in range(REQUESTS)]
            extra = {
                "ttfb_ms": statistics.median(t[1] for t in timed) * 1000,
                "first_request_ms": cold[2] * 1000,
                "kb": cold[3] / 1024,
            }
            if ctx.round >= 0 and os.environ.get("BENCH_UI_BROWSER", "1") == "1":
                load = _browser_load_ms(f"http://127.0.0.1:{port}{target}")
                if load is not None:
                    extra["browser_load_ms"] = load
            return Measurement(statistics.median(t[2] for t in timed), extra)
        finally:
            server.terminate()
            server.wait(30)

    return run


def _case(name: str, what: str, path: PagePath) -> Case:
    def params(quick: bool) -> str:
        runs, points = (QUICK_RUNS, QUICK_POINTS) if quick else (RUNS, POINTS)
        return f"runs={runs} points={points}"

    def guarded(ctx: Context) -> Measurement:
        if "home" not in ctx.state:
            raise NotAvailable("not available: the store was not prepared")
        return measure(path)(ctx)

    return Case(
        name=name,
        description=f"`runner server` over a SQLite store of N runs: GET {what}; seconds = "
        "median time to the last byte of 5 requests after an untimed one (extra: time to "
        "first byte, the cold first request, the size, and the page's load in headless Chromium)",
        available=available,
        run_runner=guarded,
        prepare_runner=prepare,
        params=params,
    )


def _long(ctx: Context) -> str:
    return str(ctx.state["long"])


CASES = [
    _case("ui-runs-table-10k", "/ui/runs (the newest 50)", lambda ctx: "/ui/runs"),
    _case(
        "ui-runs-table-10k-filtered",
        "/ui/runs filtered by a metric threshold and a parameter",
        lambda ctx: "/ui/runs?filter=" + quote("metrics.loss < 0.1 and params.alpha = 0.5"),
    ),
    _case(
        "ui-runs-table-10k-sorted",
        "/ui/runs sorted by a metric (ordered in SQL over all matching runs)",
        lambda ctx: "/ui/runs?sort=metrics.loss&dir=asc",
    ),
    _case(
        "ui-run-page-100k-points",
        "/ui/runs/ID of a run with 100,000 loss points (drawn from 400 buckets)",
        lambda ctx: f"/ui/runs/{_long(ctx)}",
    ),
    _case(
        "ui-metric-values-100k-points",
        "/ui/runs/ID/values?key=loss (the exact values, 1,000 a page)",
        lambda ctx: f"/ui/runs/{_long(ctx)}/values?key=loss",
    ),
]
