"""The workflow page in headless Chromium: a real workflow run, then the same run from the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runner.server.app import Settings
from runner.store.core import SqlRunStore
from runner.store.open import open_store
from runner.store.search import RunQuery
from tests.browser import chromium, console_errors, screenshot
from tests.helpers import run_cli, write_project
from tests.live_server import serving

pytestmark = pytest.mark.slow
pytest.importorskip("runner.workflow.engine", reason="the workflow runs (issue 12) are not merged")

DIAMOND = """
    name: diamond
    steps:
      prepare: {project: ., entry_point: prepare}
      left:    {project: ., entry_point: left, needs: [prepare]}
      right:   {project: ., entry_point: right, needs: [prepare]}
      join:    {project: ., entry_point: join, needs: [left, right]}
"""
MLPROJECT = """
    name: diamond
    entry_points:
      prepare: {command: "echo prepare"}
      left: {command: "echo left"}
      right: {command: "echo right"}
      join: {command: "echo join"}
"""


def _workflow_runs(store: SqlRunStore) -> list[str]:
    found = store.search_runs(RunQuery(tags={"runner.kind": "workflow"}, order="oldest"))
    return [run.run_id for run in found.runs]


def _steps(driver: Any) -> dict[str, str]:
    from selenium.webdriver.common.by import By

    boxes = driver.find_elements(By.CSS_SELECTOR, "svg.dag-graph .step")
    return {box.get_attribute("data-step"): box.get_attribute("data-status") for box in boxes}


def test_a_workflow_run_is_drawn_as_its_dag_with_each_steps_state(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    project = write_project(tmp_path / "diamond", {"MLproject": MLPROJECT, "flow.yaml": DIAMOND})
    for _ in range(2):  # the second run is served from the step cache
        done = run_cli("workflow", "run", str(project / "flow.yaml"), "-q", timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    store = open_store(None)
    assert isinstance(store, SqlRunStore)
    first, second = _workflow_runs(store)
    with serving(Settings()) as url, chromium() as browser:
        browser.get(f"{url}/ui/workflows/{first}")
        assert _steps(browser) == dict.fromkeys(["prepare", "left", "right", "join"], "finished")
        assert len(browser.find_elements(By.CSS_SELECTOR, "svg.dag-graph line.edge")) == 4
        assert console_errors(browser) == []
        screenshot(browser, "workflow_graph")

        browser.get(f"{url}/ui/workflows/{second}")
        assert _steps(browser) == dict.fromkeys(["prepare", "left", "right", "join"], "cached")
        row = browser.find_element(By.CSS_SELECTOR, "#steps-table tr[data-step=join]").text
        assert "served from the cache" in row and "left, right" in row
        browser.find_element(By.CSS_SELECTOR, "svg.dag-graph a.step[data-step=join]").click()
        heading = browser.find_element(By.TAG_NAME, "h1").text
        assert (
            heading.startswith("Run ")
            and "part of" in browser.find_element(By.CSS_SELECTOR, "p.summary").text
        )
        assert console_errors(browser) == []
        screenshot(browser, "workflow_graph_cached")

        browser.get(f"{url}/ui/workflows/{store.child_runs(first)[0].run_id}")
        message = browser.find_element(By.CSS_SELECTOR, "p.error").text
        assert message.endswith("is not a workflow run: it recorded no readable DAG")
    store.close()
