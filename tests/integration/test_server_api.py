"""The tracking server's REST API over a real socket: round trips, 4xx reasons, retries."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from runner.server.app import Settings
from runner.store.open import open_store
from tests.live_server import serving

NEW_RUN = {"experiment": "exp", "parameters": {"alpha": "0.5"}, "tags": {"team": "ml"}}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    settings = Settings(
        store_uri=f"sqlite:///{tmp_path / 'server.db'}",
        artifact_root=str(tmp_path / "artifacts"),
        max_body_bytes=64 * 1024,
        max_artifact_bytes=1024 * 1024,
    )
    with serving(settings) as url:
        yield url


def post(url: str, body: Any, expect: int = 200) -> Any:
    answer = requests.post(url, json=body, timeout=30)
    assert answer.status_code == expect, answer.text
    return answer.json()


def new_run(api: str, **changes: Any) -> str:
    return str(post(f"{api}/api/runs", {**NEW_RUN, **changes}, 201)["run_id"])


def test_a_run_round_trips_with_params_metrics_tags_and_history(api: str) -> None:
    run_id = new_run(api)
    runs = f"{api}/api/runs/{run_id}"
    post(f"{runs}/start", {})
    post(f"{runs}/params", {"params": {"beta": "2"}})
    post(f"{runs}/tags", {"tags": {"note": "first"}})
    metrics = [{"key": "loss", "value": 1.0 / (step + 1), "step": step} for step in range(50)]
    post(f"{runs}/metrics", {"metrics": [*metrics, {"key": "acc", "value": "NaN"}]})
    post(f"{runs}/finish", {"status": "FINISHED", "exit_code": 0})
    record = requests.get(runs, timeout=30).json()
    assert (record["status"], record["exit_code"], record["experiment"]) == ("FINISHED", 0, "exp")
    assert record["parameters"] == {"alpha": "0.5", "beta": "2"}
    assert record["tags"] == {"team": "ml", "note": "first"}
    assert record["metrics"] == {"loss": 1.0 / 50, "acc": None}
    history = requests.get(f"{runs}/metric-history", params={"key": "loss"}, timeout=30).json()
    assert [p["step"] for p in history["points"]] == list(range(50))
    assert math.isclose(history["points"][3]["value"], 0.25)
    after = {"key": "loss", "after_step": 47}
    tail = requests.get(f"{runs}/metric-history", params=after, timeout=30).json()
    assert [p["step"] for p in tail["points"]] == [48, 49]


def test_experiments_are_listed_and_created_once(api: str) -> None:
    first = post(f"{api}/api/experiments", {"name": "team-a"})
    again = post(f"{api}/api/experiments", {"name": "team-a"})
    assert first == again and first["name"] == "team-a"
    listed = requests.get(f"{api}/api/experiments", timeout=30).json()["experiments"]
    assert [e["name"] for e in listed] == ["team-a"]


def test_search_filters_on_status_params_tags_and_metrics(api: str) -> None:
    ids = {}
    for alpha in ("0.1", "0.2", "0.3"):
        ids[alpha] = new_run(api, parameters={"alpha": alpha}, tags={"kind": f"k{alpha}"})
        post(
            f"{api}/api/runs/{ids[alpha]}/metrics",
            {"metrics": [{"key": "acc", "value": float(alpha)}]},
        )
    post(f"{api}/api/runs/{ids['0.3']}/finish", {"status": "FAILED"})

    def found(query: dict[str, Any]) -> list[str]:
        page = post(f"{api}/api/runs/search", query)
        return [run["run_id"] for run in page["runs"]]

    assert found({"params": {"alpha": "0.2"}}) == [ids["0.2"]]
    assert found({"tags": {"kind": "k0.1"}}) == [ids["0.1"]]
    assert found({"status": "FAILED"}) == [ids["0.3"]]
    assert set(found({"metrics": [{"key": "acc", "op": ">", "value": 0.15}]})) == {
        ids["0.2"],
        ids["0.3"],
    }
    assert found({"order": "oldest", "experiment": "exp"}) == [ids["0.1"], ids["0.2"], ids["0.3"]]
    assert found({"experiment": "nobody"}) == []


def test_search_pages_with_tokens(api: str) -> None:
    made = [new_run(api) for _ in range(5)]
    first = post(f"{api}/api/runs/search", {"limit": 2, "order": "oldest"})
    assert [r["run_id"] for r in first["runs"]] == made[:2] and first["more"] == 3
    second = post(
        f"{api}/api/runs/search",
        {"limit": 2, "order": "oldest", "page_token": first["next_page_token"]},
    )
    assert [r["run_id"] for r in second["runs"]] == made[2:4]


def test_search_sorts_by_a_param_with_tokens(api: str) -> None:
    made = [new_run(api, parameters={"p": value}) for value in ("b", "a", "c")]
    first = post(f"{api}/api/runs/search", {"limit": 2, "sort": "params.p", "ascending": True})
    assert [r["run_id"] for r in first["runs"]] == [made[1], made[0]] and first["more"] == 1
    body = {"limit": 2, "sort": "params.p", "ascending": True}
    last = post(f"{api}/api/runs/search", {**body, "page_token": first["next_page_token"]})
    assert [r["run_id"] for r in last["runs"]] == [made[2]] and last["next_page_token"] is None


@pytest.mark.parametrize(
    ("path", "body", "field", "reason"),
    [
        ("/api/runs", {}, "experiment", "is required"),
        ("/api/runs", {"experiment": 3}, "experiment", "must be a string, not an integer"),
        ("/api/runs", {"experiment": "e", "parameters": {"a": 1}}, "parameters.a", "must be a"),
        ("/api/runs/search", {"limit": "9"}, "limit", "must be an integer, not a string"),
        ("/api/runs/search", {"limit": 10_001}, "limit", "must be between 0 and 10000"),
        ("/api/runs/search", {"order": "random"}, "order", "must be newest or oldest"),
        ("/api/runs/search", {"sort": "colour"}, "sort", "cannot sort by 'colour'; expected"),
        ("/api/runs/search", {"ascending": "yes"}, "ascending", "must be a boolean, not a string"),
        (
            "/api/runs/search",
            {"metrics": [{"key": "m", "op": "~", "value": 1}]},
            "metrics[0].op",
            "",
        ),
        ("/api/runs/search", [1, 2], "body", "must be a JSON object"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    api: str, path: str, body: Any, field: str, reason: str
) -> None:
    answer = post(f"{api}{path}", body, 400)
    assert answer["error"] == "bad-request" and answer["field"] == field
    assert answer["message"].startswith(f"{field}: {reason}")


@pytest.mark.parametrize(
    ("metric", "field", "reason"),
    [
        ({"value": 1}, "metrics[0].key", "is required"),
        ({"key": "m"}, "metrics[0].value", "is required"),
        ({"key": "m", "value": "high"}, "metrics[0].value", "must be a number, not a string"),
        ({"key": "m", "value": 1, "step": 1.5}, "metrics[0].step", "must be an integer"),
        ({"key": "m", "value": 1, "step": 2**64}, "metrics[0].step", "must be between"),
        ({"key": "", "value": 1}, "metrics[0].key", "must be 1 to 256 characters"),
        ({"key": "m", "value": True}, "metrics[0].value", "must be a number, not a boolean"),
    ],
)
def test_bad_metrics_are_refused_with_the_field(
    api: str, metric: dict[str, Any], field: str, reason: str
) -> None:
    run_id = new_run(api)
    answer = post(f"{api}/api/runs/{run_id}/metrics", {"metrics": [metric]}, 400)
    assert answer["field"] == field and answer["message"].startswith(f"{field}: {reason}")
    assert requests.get(f"{api}/api/runs/{run_id}", timeout=30).json()["metrics"] == {}


def test_invalid_json_and_unknown_runs_are_4xx(api: str) -> None:
    broken = requests.post(f"{api}/api/runs", data=b"{nope", timeout=30)
    assert broken.status_code == 400 and broken.json()["message"].startswith("body: is not valid")
    missing = requests.get(f"{api}/api/runs/{'0' * 32}", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"] == "run-not-found"
    assert missing.json()["message"] == f"run '{'0' * 32}' not found"
    bad_status = post(f"{api}/api/runs/{new_run(api)}/finish", {"status": "DONE"}, 400)
    assert bad_status["message"].startswith("unknown run status 'DONE'")
    nowhere = requests.get(f"{api}/api/nowhere", timeout=30)
    assert nowhere.status_code == 404 and nowhere.json()["error"] == "http-error"


def test_a_retried_create_returns_the_same_run(api: str) -> None:
    body = {**NEW_RUN, "request_key": "create-1"}
    first = post(f"{api}/api/runs", body, 201)["run_id"]
    assert post(f"{api}/api/runs", body, 201)["run_id"] == first
    assert len(post(f"{api}/api/runs/search", {})["runs"]) == 1


def test_a_retried_batch_is_applied_once(api: str, tmp_path: Path) -> None:
    run_id = new_run(api)
    body = {"key": "batch-1", "metrics": [{"key": "m", "value": 1.0, "step": 1}]}
    assert post(f"{api}/api/runs/{run_id}/batch", body) == {"applied": True}
    assert post(f"{api}/api/runs/{run_id}/batch", body) == {"applied": False}
    with open_store(f"sqlite:///{tmp_path / 'server.db'}") as store:  # type: ignore[attr-defined]
        assert len(list(store.metric_history(run_id, "m"))) == 1


def test_journal_records_are_applied_once_and_bad_ones_alone_refused(api: str) -> None:
    run_id = new_run(api)
    journal = f"{api}/api/runs/{run_id}/journal"
    records = [
        {"id": "a", "t": "metric", "key": "loss", "value": 0.5, "step": 1, "ts": 10},
        {"id": "b", "t": "param", "key": "alpha", "value": "0.9"},  # alpha is already 0.5
        {"id": "c", "t": "tag", "key": "stage", "value": "train"},
        {"t": "tag", "key": "no-id", "value": "x"},
        {"id": "d", "t": "from-the-future"},
    ]
    answer = post(journal, {"records": records})
    assert (answer["applied"], answer["duplicates"], answer["ignored"]) == (2, 0, 1)
    assert [r["id"] for r in answer["rejected"]] == [None, "b"]
    assert answer["rejected"][1]["reason"].startswith("param 'alpha' of run")
    again = post(journal, {"records": records[:1] + records[2:3]})
    assert (again["applied"], again["duplicates"]) == (0, 2)
    record = requests.get(f"{api}/api/runs/{run_id}", timeout=30).json()
    assert record["metrics"] == {"loss": 0.5} and record["tags"]["stage"] == "train"
    assert record["tags"]["runner.ingest_warning"].startswith("2 logged records were refused")


def test_artifacts_upload_list_and_stream_back_with_sizes(api: str) -> None:
    run_id = new_run(api)
    files = f"{api}/api/runs/{run_id}/artifacts/files"
    data = bytes(range(256)) * 1000
    put = requests.put(f"{files}/model/weights.bin", data=data, timeout=30)
    assert put.status_code == 201 and put.json() == {"path": "model/weights.bin", "size": 256_000}
    requests.put(f"{files}/notes.txt", data=b"hi", timeout=30)
    listing = requests.get(f"{api}/api/runs/{run_id}/artifacts", timeout=30).json()
    assert listing["files"] == [
        {"path": "model", "is_dir": True, "size": None},
        {"path": "notes.txt", "is_dir": False, "size": 2},
    ]
    inner = requests.get(f"{api}/api/runs/{run_id}/artifacts", params={"path": "model"}, timeout=30)
    assert inner.json()["files"] == [
        {"path": "model/weights.bin", "is_dir": False, "size": 256_000}
    ]
    with requests.get(f"{files}/model/weights.bin", stream=True, timeout=30) as download:
        assert download.headers["content-length"] == "256000"
        assert b"".join(download.iter_content(4096)) == data
    missing = requests.get(f"{files}/model/nothing.bin", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"] == "artifact-not-found"


def test_oversized_requests_are_413(api: str) -> None:
    run_id = new_run(api)
    big = {"metrics": [{"key": "m", "value": 1.0, "step": i} for i in range(5000)]}
    answer = requests.post(f"{api}/api/runs/{run_id}/metrics", json=big, timeout=30)
    assert answer.status_code == 413 and answer.json()["error"] == "request-too-large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts the stream
        for _ in range(40):
            yield b"x" * 32 * 1024

    files = f"{api}/api/runs/{run_id}/artifacts/files"
    streamed = requests.put(f"{files}/big.bin", data=chunks(), timeout=30)
    assert streamed.status_code == 413
    assert requests.get(f"{api}/api/runs/{run_id}/artifacts", timeout=30).json()["files"] == []


def test_openapi_document_describes_the_routes(api: str) -> None:
    document = requests.get(f"{api}/api/openapi.json", timeout=30).json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert "post" in paths["/api/runs"] and "get" in paths["/api/runs/{run_id}"]
    assert "put" in paths["/api/runs/{run_id}/artifacts/files/{path}"]
    summary = paths["/api/runs/{run_id}/journal"]["post"]["summary"]
    assert summary.startswith("Journal records")


def test_a_file_in_the_way_of_a_folder_is_a_400(api: str) -> None:
    run_id = new_run(api)
    files = f"{api}/api/runs/{run_id}/artifacts/files"
    assert requests.put(f"{files}/model", data=b"a file", timeout=30).status_code == 201
    answer = requests.put(f"{files}/model/weights.bin", data=b"w", timeout=30)
    assert answer.status_code == 400
    assert answer.json()["message"] == (
        "artifact 'model/weights.bin' cannot be written: a file is in the way of its folder"
    )


def test_cancel_ends_a_run_no_runner_owns_and_names_the_host_of_one_elsewhere(api: str) -> None:
    waiting = new_run(api)
    assert post(f"{api}/api/runs/{waiting}/cancel", {"wait_seconds": 1}) == {"status": "KILLED"}
    record = requests.get(f"{api}/api/runs/{waiting}", timeout=30).json()
    assert (record["status"], record["failure_reason"]) == ("KILLED", "cancelled before it started")
    elsewhere = new_run(api, runner_pid=4242, runner_host="other-box", runner_start=1.0)
    answer = post(f"{api}/api/runs/{elsewhere}/cancel", {"wait_seconds": 1}, 409)
    assert answer["message"] == f"run {elsewhere} is executed by a runner on host other-box"
    assert answer["hint"] == "cancel it from that host"
    assert post(f"{api}/api/runs/{waiting}/cancel", {}) == {"status": "KILLED"}  # already ended
