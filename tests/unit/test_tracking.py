"""runner.tracking appends a journal; runner.execution.ingest moves it into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    monkeypatch.setattr(tracking, "_warned", False)
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
