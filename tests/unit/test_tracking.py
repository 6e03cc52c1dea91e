"""runner.tracking appends a journal; runner.execution.ingest moves it into the store."""

from __future__ import annotations

import atexit
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from runner import tracking
from runner.execution.ingest import JournalReader, ingest, tracking_pythonpath


class RecordingStore:
    def __init__(self) -> None:
        self.metrics: list[Any] = []
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}

    def log_metrics(self, run_id: str, metrics: Any) -> None:
        self.metrics.extend(metrics)

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        self.params.update(params)

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        self.tags.update(tags)


@pytest.fixture
def in_run(runner_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    artifacts = runner_home / "artifacts" / "r1"
    artifacts.mkdir(parents=True)
    monkeypatch.setenv("RUNNER_RUN_ID", "r1")
    monkeypatch.setenv("RUNNER_ARTIFACTS_DIR", str(artifacts))
    return artifacts


def test_logged_records_reach_the_store(in_run: Path) -> None:
    tracking.log_metric("loss", 0.5, step=1, timestamp=10)
    tracking.log_metrics({"acc": 0.9}, step=2)
    tracking.log_param("seed", 7)
    tracking.set_tag("stage", "dev")
    store = RecordingStore()
    assert ingest(store, "r1", JournalReader("r1")) == 4  # type: ignore[arg-type]
    assert store.metrics[0] == ("loss", 0.5, 1, 10)
    assert store.metrics[1][:3] == ("acc", 0.9, 2)
    assert store.params == {"seed": "7"} and store.tags == {"stage": "dev"}


def test_reader_only_takes_complete_new_lines(in_run: Path) -> None:
    reader = JournalReader("r1")
    tracking.log_metric("a", 1)
    (in_run / tracking.JOURNAL).open("a").write('{"t":"metric","key":"b"')  # torn write
    assert [r["key"] for r in reader.read_new()] == ["a"]
    assert reader.read_new() == []


def test_outside_a_run_nothing_is_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RUNNER_RUN_ID", raising=False)
    monkeypatch.setattr(tracking, "_warned", set())
    tracking.log_metric("x", 1)
    assert "not inside a runner run" in capsys.readouterr().err


def test_artifacts_are_copied_and_contained(in_run: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    copied = tracking.log_artifact(model, "models")
    assert copied == (in_run / "files" / "models" / "model.bin").resolve()
    with pytest.raises(ValueError, match="escapes the run's artifacts"):
        tracking.log_artifact(model, "../../x")


def test_tracking_module_is_importable_standalone() -> None:
    lib = Path(tracking_pythonpath())
    assert (lib / "runner_tracking.py").read_text() == Path(tracking.__file__).read_text()


def test_malformed_journal_lines_are_skipped(in_run: Path) -> None:
    (in_run / tracking.JOURNAL).write_text(
        '{"t":"metric","key":"a"}\n[1,2]\nnot json\n'
        '{"t":"metric","key":"b","value":1,"step":0,"ts":5}\n'
    )
    store = RecordingStore()
    assert ingest(store, "r1", JournalReader("r1")) == 1  # type: ignore[arg-type]
    assert store.metrics == [("b", 1.0, 0, 5)]


def test_a_contradicting_param_becomes_a_warning_tag(in_run: Path) -> None:
    from runner.errors import StoreError

    class Strict(RecordingStore):
        def log_params(self, run_id: str, params: dict[str, str]) -> None:
            raise StoreError("param 'alpha' cannot be changed")

    tracking.log_param("alpha", 2)
    store = Strict()
    ingest(store, "r1", JournalReader("r1"))  # type: ignore[arg-type]
    assert store.tags == {"runner.ingest_warning": "param 'alpha' cannot be changed"}


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A tracking server stand-in on 127.0.0.1 that keeps every request it is sent."""

    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def _take(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append((self.command, self.path, body))
        self.send_response(204)
        self.end_headers()

    do_POST = do_PUT = _take

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass


@pytest.fixture(autouse=True)
def no_outbox_left() -> Iterator[None]:
    """A test's HTTP sender thread ends with the test (not at interpreter exit, retrying)."""
    yield
    outbox, tracking._outbox = tracking._outbox, None
    if outbox is not None:
        atexit.unregister(outbox.close)
        outbox.closing = True
        outbox.wake.set()


@pytest.fixture
def http_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, bytes]]]:
    _Recorder.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("RUNNER_RUN_ID", "r/1")
    monkeypatch.setenv("RUNNER_TRACKING_TRANSPORT", "http")
    monkeypatch.setenv("RUNNER_TRACKING_URI", f"http://127.0.0.1:{server.server_port}/")
    monkeypatch.delenv("RUNNER_ARTIFACTS_DIR", raising=False)
    yield _Recorder.received
    server.shutdown()
    server.server_close()


def test_http_transport_posts_journal_records_with_unique_ids(
    http_run: list[tuple[str, str, bytes]],
) -> None:
    tracking.log_metric("loss", 0.5, step=2, timestamp=10)
    tracking.log_param("seed", 7)
    assert tracking.flush(10) is True
    assert {(method, path) for method, path, _ in http_run} == {("POST", "/api/runs/r%2F1/journal")}
    first, second = (record for _, _, body in http_run for record in json.loads(body)["records"])
    assert first.pop("id") != second.pop("id")
    assert first == {"t": "metric", "key": "loss", "value": 0.5, "step": 2, "ts": 10}
    assert second == {"t": "param", "key": "seed", "value": "7"}


def test_http_transport_uploads_artifacts(
    http_run: list[tuple[str, str, bytes]], tmp_path: Path
) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "weights.bin").write_bytes(b"w")
    assert tracking.log_artifact(tmp_path / "model", "out") is None
    assert http_run == [("PUT", "/api/runs/r%2F1/artifacts/files/out/model/weights.bin", b"w")]


def test_an_unreachable_server_costs_one_warning_never_an_exception(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("RUNNER_RUN_ID", "r1")
    monkeypatch.setenv("RUNNER_TRACKING_TRANSPORT", "http")
    monkeypatch.setenv("RUNNER_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(tracking, "_warned", set())
    tracking.log_metric("a", 1)
    tracking.log_metric("b", 2)
    assert tracking.flush(2) is False  # kept in the buffer file, not lost, not raised
    err = capsys.readouterr().err
    assert err.count("the tracking server is not reachable; records are buffered") == 1


def test_journal_transport_is_the_default_for_older_runners(in_run: Path) -> None:
    assert tracking.transport() == "journal"


def test_http_backends_need_a_tracking_server() -> None:
    from runner.errors import BackendError
    from runner.execution.ingest import check_transport

    check_transport("local", "journal")  # any store will do
    with pytest.raises(BackendError) as err:
        check_transport("cluster", "http")
    assert err.value.message == (
        "backend 'cluster' runs entry points on other machines, which log to their run over "
        "HTTP: RUNNER_TRACKING_URI must name a tracking server (http://...)"
    )


def test_run_variables_name_the_transport(runner_home: Path) -> None:
    from runner.execution.ingest import run_variables

    journal = run_variables("r1", "Default", "journal")
    assert journal["RUNNER_TRACKING_TRANSPORT"] == "journal"
    assert journal["RUNNER_ARTIFACTS_DIR"] == str(runner_home / "artifacts" / "r1")
    http_vars = run_variables("r1", "Default", "http")
    assert http_vars["RUNNER_TRACKING_TRANSPORT"] == "http"
    assert "RUNNER_ARTIFACTS_DIR" not in http_vars
