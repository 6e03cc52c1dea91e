"""The web UI in a real headless Chromium against a real server over a real store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.server.app import Settings
from runner.store import NewRun
from runner.store.core import SqlRunStore
from runner.store.open import open_store
from tests.browser import chromium, console_errors, full_page_screenshot, screenshot, wait_until
from tests.helpers import spawn_cli, write_project
from tests.live_server import serving

pytestmark = pytest.mark.slow


@pytest.fixture
def store(runner_home: Path) -> Iterator[SqlRunStore]:
    found = open_store(None)
    assert isinstance(found, SqlRunStore)
    yield found
    found.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def new_run(
    store: SqlRunStore,
    name: str,
    params: dict[str, str],
    *,
    tags: dict[str, str] | None = None,
    dirty: bool = False,
) -> str:
    run_id = store.create_run(
        NewRun(
            experiment="training",
            entry_point="train",
            command=f"python train.py {' '.join(f'--{k} {v}' for k, v in params.items())}",
            backend="local",
            parameters=params,
            source={
                "uri": "https://example.invalid/team/model.git",
                "commit": "0123456789abcdef0123456789abcdef01234567",
                "repo_url": "https://example.invalid/team/model.git",
                "dirty": dirty,
                "diff_digest": "5e" * 32 if dirty else None,
            },
            environment={
                "manager": "uv",
                "key": "9f" * 32,
                "python": "3.11.9",
                "lock": "numpy==2.1.0\nscikit-learn==1.5.2",
            },
            run_name=name,
            tags=tags or {},
        )
    )
    store.start_run(run_id)
    return run_id


def finish(store: SqlRunStore, run_id: str, status: str = "FINISHED") -> None:
    reason = "exit code 1" if status == "FAILED" else None
    store.finish_run(run_id, status, 0 if status == "FINISHED" else 1, reason)  # type: ignore[arg-type]


def losses(store: SqlRunStore, run_id: str, start: float, count: int) -> None:
    base = 1_700_000_000_000
    points = [("loss", start / (step + 1), step, base + step * 250) for step in range(count)]
    store.log_metrics(run_id, points)


def shown_names(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, "#runs-body tr[data-run] td:nth-child(2) a")
    return [row.text for row in rows]


def test_filters_and_sorting_change_the_runs_table(store: SqlRunStore, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    finals = {"ant": 0.9, "bee": 0.2, "cat": 0.5, "dog": 0.1, "elk": 0.7}
    for index, (name, final) in enumerate(finals.items()):
        run_id = new_run(store, name, {"alpha": str(index), "optimizer": "adam"})
        store.log_metrics(run_id, [("loss", final, 0, 1_700_000_000_000 + index)])
        finish(store, run_id, "FAILED" if name == "cat" else "FINISHED")
    with serving(Settings()) as url:
        browser.get(f"{url}/ui/runs")
        assert shown_names(browser) == ["elk", "dog", "cat", "bee", "ant"]  # newest first
        screenshot(browser, "runs_table")

        box = browser.find_element(By.NAME, "filter")
        box.send_keys("metrics.loss < 0.6 and params.optimizer = adam")
        box.submit()
        wait_until(lambda: "filter=" in browser.current_url, what="the filtered page")
        assert shown_names(browser) == ["dog", "cat", "bee"]

        browser.find_element(By.LINK_TEXT, "loss").click()  # sort by the metric, high first
        wait_until(lambda: "sort=metrics.loss" in browser.current_url, what="the sorted page")
        assert shown_names(browser) == ["cat", "bee", "dog"]
        browser.find_element(By.PARTIAL_LINK_TEXT, "loss").click()  # the other way round
        wait_until(lambda: "dir=asc" in browser.current_url, what="ascending order")
        assert shown_names(browser) == ["dog", "bee", "cat"]

        Select(browser.find_element(By.NAME, "status")).select_by_value("FAILED")
        browser.find_element(By.CSS_SELECTOR, ".filters button[type=submit]").click()
        wait_until(lambda: "status=FAILED" in browser.current_url, what="the status filter")
        assert shown_names(browser) == ["cat"]
        status = browser.find_element(By.CSS_SELECTOR, "#runs-body .status").text
        assert "FAILED" in status  # readable without colour: the word and a mark
        assert console_errors(browser) == []
        screenshot(browser, "runs_table_filtered")


def test_a_wrong_filter_says_what_it_could_not_read(store: SqlRunStore, browser: Any) -> None:
    with serving(Settings()) as url:
        browser.get(f"{url}/ui/runs?filter=metrics.loss+%3C+low")
        from selenium.webdriver.common.by import By

        message = browser.find_element(By.CSS_SELECTOR, "p.error").text
        assert message == "metrics.loss: 'low' is not a number"
        screenshot(browser, "runs_table_bad_filter")


def test_a_run_page_draws_each_metric_with_its_points(
    store: SqlRunStore, browser: Any, runner_home: Path
) -> None:
    from selenium.webdriver.common.by import By

    params = {"alpha": "0.5", "epochs": "40"}
    run_id = new_run(store, "charted", params, tags={"team": "vision"}, dirty=True)
    losses(store, run_id, 2.0, 40)
    accuracy = [("accuracy", 0.5 + step / 50, step, 1_700_000_000_000) for step in range(25)]
    store.log_metrics(run_id, accuracy)
    finish(store, run_id)
    kept = runner_home / "artifacts" / run_id
    (kept / "files" / "model").mkdir(parents=True)
    (kept / "files" / "model" / "metrics.json").write_text('{"loss": 0.05}\n')
    (kept / "git-diff.patch").write_text("--- a/train.py\n+++ b/train.py\n-lr = 0.1\n+lr = 0.5\n")
    (kept / "output.log").write_text(
        "".join(f"epoch {e}: loss {2.0 / (e + 1):.3f}\n" for e in range(40))
    )
    with serving(Settings()) as url:
        browser.get(f"{url}/ui/runs/{run_id}")
        loss = browser.find_element(By.CSS_SELECTOR, "[data-metric=loss] g.series")
        assert loss.get_attribute("data-points") == "40"
        assert len(loss.find_elements(By.CSS_SELECTOR, "circle.pt")) == 40
        accuracy_line = browser.find_element(By.CSS_SELECTOR, "[data-metric=accuracy] g.series")
        assert len(accuracy_line.find_elements(By.CSS_SELECTOR, "circle.pt")) == 25
        first = loss.find_element(By.CSS_SELECTOR, "circle.pt title")
        assert first.get_attribute("textContent") == "loss @ 0: 2"  # the hover value
        facts = browser.find_element(By.CSS_SELECTOR, "#provenance").text
        assert "0123456789abcdef0123456789abcdef01234567" in facts and "3.11.9" in facts
        assert "yes (uncommitted changes)" in facts
        browser.find_element(By.XPATH, "//summary[starts-with(., 'Uncommitted')]").click()
        assert "+lr = 0.5" in browser.find_element(By.CSS_SELECTOR, "pre.diff").text
        assert "epoch 39: loss 0.050" in browser.find_element(By.ID, "log").text
        assert console_errors(browser) == []
        full_page_screenshot(browser, "run_page")

        browser.find_element(By.LINK_TEXT, "model/").click()
        browser.find_element(By.LINK_TEXT, "model/metrics.json").click()
        assert browser.find_element(By.CSS_SELECTOR, "pre.artifact").text == '{"loss": 0.05}'
        assert "15 bytes" in browser.find_element(By.TAG_NAME, "main").text
        assert console_errors(browser) == []

        overlay = f"{url}/ui/runs/{run_id}?x=time&metric=loss&metric=accuracy"
        browser.get(overlay)
        lines = browser.find_elements(By.CSS_SELECTOR, "#overlay g.series")
        assert [line.get_attribute("data-label") for line in lines] == ["loss", "accuracy"]
        assert "time (s)" in browser.find_element(By.ID, "overlay").text
        assert console_errors(browser) == []


def test_many_points_are_downsampled_and_exact_values_are_a_click_away(
    store: SqlRunStore, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    run_id = new_run(store, "long", {"alpha": "0.1"})
    losses(store, run_id, 3.0, 5000)
    finish(store, run_id)
    with serving(Settings()) as url:
        browser.get(f"{url}/ui/runs/{run_id}")
        series = browser.find_element(By.CSS_SELECTOR, "[data-metric=loss] g.series")
        drawn = len(series.find_elements(By.CSS_SELECTOR, "circle.pt"))
        assert series.get_attribute("data-points") == "5000"
        assert drawn == int(series.get_attribute("data-drawn")) and 0 < drawn <= 1000
        browser.find_element(By.LINK_TEXT, "exact values").click()
        cells = browser.find_elements(By.CSS_SELECTOR, "table.values tbody tr")
        assert len(cells) == 1000
        assert cells[2].text.split() == ["2", "1700000000500", "1.0"]
        browser.find_element(By.PARTIAL_LINK_TEXT, "Steps after 999").click()
        first = browser.find_element(By.CSS_SELECTOR, "table.values tbody tr").text.split()
        assert first[0] == "1000" and float(first[2]) == 3.0 / 1001
        assert console_errors(browser) == []
        screenshot(browser, "metric_values")


def test_compare_marks_the_parameter_that_differs(store: SqlRunStore, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    low = new_run(store, "low-lr", {"lr": "0.01", "batch": "64"})
    high = new_run(store, "high-lr", {"lr": "0.1", "batch": "64"})
    for run_id, start in ((low, 1.0), (high, 4.0)):
        losses(store, run_id, start, 30)
        finish(store, run_id)
    rebuilt = {"manager": "uv", "key": "7a" * 32, "python": "3.12.4", "lock": "numpy==2.2.0"}
    store.update_run(high, environment=rebuilt)
    with serving(Settings()) as url:
        browser.get(f"{url}/ui/runs")
        for run_id in (low, high):
            browser.find_element(By.CSS_SELECTOR, f"input[value='{run_id}']").click()
        button = browser.find_element(By.ID, "compare-button")
        assert button.is_enabled()
        button.click()
        wait_until(lambda: "/ui/compare" in browser.current_url, what="the compare page")
        lr = browser.find_element(By.CSS_SELECTOR, "#compare-params tr[data-key=lr]")
        batch = browser.find_element(By.CSS_SELECTOR, "#compare-params tr[data-key=batch]")
        assert lr.get_attribute("class") == "differs" and "≠" in lr.text
        assert batch.get_attribute("class") == "same"
        assert lr.text.split()[-2:] == ["0.1", "0.01"]  # newest first, as selected
        lines = browser.find_elements(By.CSS_SELECTOR, "[data-metric=loss] g.series")
        assert [line.get_attribute("data-points") for line in lines] == ["30", "30"]
        env = {
            row.get_attribute("data-key"): row.get_attribute("class")
            for row in browser.find_elements(By.CSS_SELECTOR, "#compare-env tbody tr")
        }
        assert env["env.python"] == env["env.key"] == env["env.lock"] == "differs"
        assert env["env.manager"] == env["source.commit"] == env["entry point"] == "same"
        finals = browser.find_element(By.CSS_SELECTOR, "#compare-metrics tbody tr").text
        assert finals.split() == ["loss", "0.133333", "0.0333333"]
        assert console_errors(browser) == []
        full_page_screenshot(browser, "compare")


def test_a_running_runs_log_grows_on_its_page(tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    project = write_project(
        tmp_path / "ticker",
        {
            "MLproject": """
                name: ticker
                entry_points:
                  main:
                    command: "for i in $(seq 1 40); do echo tick-$i; sleep 0.25; done"
            """
        },
    )
    runner = spawn_cli("run", str(project), "-q")
    try:
        with serving(Settings()) as url:
            store = open_store(None)
            run_id = wait_until(lambda: _running(store), what="the run to start")
            browser.get(f"{url}/ui/runs/{run_id}")
            log = browser.find_element(By.ID, "log")
            wait_until(lambda: "tick-" in log.text, what="the first lines")
            seen = log.text.count("tick-")
            wait_until(lambda: log.text.count("tick-") > seen + 3, what="the log to grow")
            assert "FINISHED" not in browser.find_element(By.ID, "run-status").text
            screenshot(browser, "run_log_following")
            runner.wait(timeout=60)
            wait_until(lambda: "tick-40" in log.text, what="the last line")
            note = browser.find_element(By.ID, "follow-note")
            wait_until(lambda: "FINISHED" in note.text, what="the end of the run")
            assert log.text.count("tick-") == 40  # nothing shown twice
            assert console_errors(browser) == []
            store.close()
    finally:
        if runner.poll() is None:
            runner.kill()
        runner.communicate()


def _running(store: Any) -> str | None:
    page = store.list_runs(status="RUNNING")
    return page.runs[0].run_id if page.runs else None


SCRIPT = "<script>document.title='pwned';window.pwned=1</script>"
IMAGE = "<img src=x onerror=\"document.title='pwned';window.pwned=1\">"


def test_a_logged_script_value_shows_as_text_and_never_runs(
    store: SqlRunStore, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    tags = {"note": IMAGE, IMAGE: "key"}
    first = new_run(store, SCRIPT, {"alpha": SCRIPT, "beta": IMAGE}, tags=tags)
    second = new_run(store, "plain", {"alpha": "1", "beta": "2"})
    store.log_metrics(first, [(SCRIPT, 1.0, 0, 1_700_000_000_000)])
    finish(store, first, "FAILED")
    store.finish_run(second, "FAILED", 1, SCRIPT)  # type: ignore[arg-type]
    pages = [
        "/ui/runs",
        f"/ui/runs/{first}",
        f"/ui/runs/{second}",
        f"/ui/compare?run={first}&run={second}",
        f"/ui/runs?filter=params.alpha+%3D+%22{SCRIPT.replace('=', '%3D')}%22",
    ]
    with serving(Settings()) as url:
        for page in pages:
            browser.get(url + page)
            assert browser.execute_script("return window.pwned") is None, page
            assert browser.title != "pwned", page
            assert not browser.find_elements(By.CSS_SELECTOR, "main script, main img"), page
            assert console_errors(browser) == [], page
        browser.get(f"{url}/ui/runs/{first}")
        cell = browser.find_element(By.CSS_SELECTOR, "#params-table tr:first-child td")
        assert cell.text == SCRIPT  # shown as the text it is
        assert IMAGE in browser.find_element(By.ID, "tags-table").text
        browser.get(f"{url}/ui/runs/{second}")
        reason = browser.find_element(By.CSS_SELECTOR, "p.error").text
        assert reason == f"Failure reason: {SCRIPT}"
        screenshot(browser, "script_values_as_text")


def test_off_loopback_the_browser_signs_in_with_the_token(store: SqlRunStore, browser: Any) -> None:
    import urllib.error
    import urllib.request

    from selenium.webdriver.common.by import By

    run_id = new_run(store, "guarded", {"alpha": "1"})
    with serving(Settings(token="s3cret-token")) as url:
        browser.get(f"{url}/ui/runs/{run_id}")
        wait_until(lambda: browser.current_url.endswith("/ui/login"), what="the login form")
        browser.find_element(By.ID, "token").send_keys("wrong")
        browser.find_element(By.CSS_SELECTOR, "form.login button").click()
        [wrong_token] = wait_until(
            lambda: browser.find_elements(By.CSS_SELECTOR, "p.error"), what="the refusal"
        )
        wrong = wrong_token.text
        assert wrong == "That token is not this server's."
        [refused_status] = console_errors(browser)  # the refusal is a 401, as it should be
        assert "/ui/login" in refused_status and "401" in refused_status
        browser.find_element(By.ID, "token").send_keys("s3cret-token")
        browser.find_element(By.CSS_SELECTOR, "form.login button").click()
        wait_until(lambda: browser.current_url.endswith("/ui/runs"), what="the runs table")
        assert shown_names(browser) == ["guarded"]
        cookie = browser.get_cookie("runner_ui_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert "s3cret-token" not in cookie["value"]
        assert console_errors(browser) == []
        screenshot(browser, "signed_in")

        # the cookie opens UI pages only, never the REST API (which wants the bearer token)
        header = {"Cookie": f"runner_ui_session={cookie['value']}"}
        api = urllib.request.Request(f"{url}/api/runs", headers=header)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(api, timeout=10)
        assert refused.value.code == 401
        assert b"a valid token is required" in refused.value.read()
        page = urllib.request.Request(f"{url}/ui/runs/{run_id}", headers=header)
        with urllib.request.urlopen(page, timeout=10) as answer:
            assert b"guarded" in answer.read()


def test_pages_fit_a_narrow_screen(store: SqlRunStore) -> None:
    run_id = new_run(store, "narrow", {"alpha": "0.5", "a_rather_long_parameter_name": "x" * 80})
    losses(store, run_id, 1.0, 20)
    finish(store, run_id)
    with serving(Settings()) as url, chromium(width=400, height=800) as narrow:
        for page in ("/ui/runs", f"/ui/runs/{run_id}"):
            narrow.get(url + page)
            overflow = narrow.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            assert overflow <= 0, f"{page} is {overflow}px wider than the screen"
            assert console_errors(narrow) == []
        screenshot(narrow, "run_page_narrow")
    time.sleep(0)  # nothing left running: the context managers above stopped both


def test_running_runs_refresh_in_the_table_without_a_reload(
    store: SqlRunStore, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    done = new_run(store, "done", {"alpha": "1"})
    finish(store, done)
    live = new_run(store, "live", {"alpha": "2"})
    with serving(Settings()) as url:
        browser.get(f"{url}/ui/runs")
        browser.find_element(By.CSS_SELECTOR, f"input[value='{done}']").click()
        browser.execute_script("document.body.dataset.marker = 'same page'")
        row = f"#runs-body tr[data-run='{live}'] .status"
        assert "RUNNING" in browser.find_element(By.CSS_SELECTOR, row).text
        store.log_metrics(live, [("loss", 0.25, 0, 1_700_000_000_000)])
        finish(store, live)
        wait_until(
            lambda: "FINISHED" in browser.find_element(By.CSS_SELECTOR, row).text,
            what="the row to show the run's end",
        )
        assert browser.execute_script("return document.body.dataset.marker") == "same page"
        assert browser.find_element(By.CSS_SELECTOR, f"input[value='{done}']").is_selected()
        assert console_errors(browser) == []


def test_the_keyboard_reaches_the_content_and_shows_where_it_is(
    store: SqlRunStore, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    run_id = new_run(store, "keys", {"alpha": "1"})
    finish(store, run_id)
    with serving(Settings()) as url:
        browser.get(f"{url}/ui/runs")
        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys(Keys.TAB)
        skip = browser.switch_to.active_element
        assert skip.text == "Skip to content" and skip.get_attribute("href").endswith("#main")
        skip.send_keys(Keys.ENTER)
        assert browser.switch_to.active_element.get_attribute("id") == "main"
        for _ in range(12):  # on through the form to the first sortable column
            browser.switch_to.active_element.send_keys(Keys.TAB)
            if browser.switch_to.active_element.text == "Run":
                break
        focused = browser.switch_to.active_element
        assert focused.text == "Run" and "sort=name" in focused.get_attribute("href")
        outline = browser.execute_script(
            "return getComputedStyle(document.activeElement).outlineStyle"
        )
        assert outline == "solid"  # focus is visible, not left to the browser's default
        focused.send_keys(Keys.ENTER)
        wait_until(lambda: "sort=name" in browser.current_url, what="the sort by keyboard")
        assert console_errors(browser) == []
