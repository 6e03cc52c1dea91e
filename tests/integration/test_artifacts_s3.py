"""S3 artifact roots against a real S3-compatible server: moto's emulator, as its own process.

moto emulates the S3 API (it is not AWS): what is tested is runner's use of boto3 over HTTP.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from runner.server.app import Settings
from runner.server.artifacts import (
    ArtifactEntry,
    ArtifactNotFound,
    S3ArtifactStore,
    UnsafeArtifactPath,
    open_artifact_store,
)
from tests.live_server import free_port, serving

RUN = "a" * 32
BUCKET = "runner-artifacts"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("boto3", reason="boto3 (runner[s3]) is not installed")
    pytest.importorskip("moto.server", reason="moto[server] is not installed")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "moto did not start"
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(30)


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    import boto3

    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=BUCKET)
    return s3_endpoint


def test_files_round_trip_and_list_like_folders(s3_env: str) -> None:
    store = open_artifact_store(f"s3://{BUCKET}/team/a")
    assert isinstance(store, S3ArtifactStore)
    data = os.urandom(300_000)
    assert store.write(RUN, "model/weights.bin", io.BytesIO(data)) == 300_000
    assert store.write(RUN, "notes.txt", io.BytesIO(b"hi")) == 2
    with store.open(RUN, "model/weights.bin") as found:
        assert found.read() == data
    assert store.list(RUN) == [
        ArtifactEntry("model", True, None),
        ArtifactEntry("notes.txt", False, 2),
    ]
    weights = ArtifactEntry("model/weights.bin", False, 300_000)
    assert store.list(RUN, "model") == [weights]
    assert store.list(RUN, "model/weights.bin") == [weights]  # a file lists as itself
    assert store.list(RUN, "nothing/here") == []
    import boto3

    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert f"team/a/{RUN}/files/model/weights.bin" in keys


def test_missing_and_unsafe_paths(s3_env: str) -> None:
    store = open_artifact_store(f"s3://{BUCKET}")
    with pytest.raises(ArtifactNotFound, match=f"run {RUN} has no artifact file 'nothing'"):
        store.open(RUN, "nothing")
    with pytest.raises(UnsafeArtifactPath, match="it has a '..' segment"):
        store.write(RUN, "../other-run/x", io.BytesIO(b"x"))
    with pytest.raises(UnsafeArtifactPath, match="is not a full run id"):
        store.list("../" + RUN)


def test_the_server_proxies_an_s3_root(s3_env: str, tmp_path: Path) -> None:
    settings = Settings(
        store_uri=f"sqlite:///{tmp_path / 'server.db'}", artifact_root=f"s3://{BUCKET}/proxied"
    )
    with serving(settings) as url:
        run_id = requests.post(f"{url}/api/runs", json={"experiment": "s3"}, timeout=30).json()[
            "run_id"
        ]
        files = f"{url}/api/runs/{run_id}/artifacts/files"
        put = requests.put(f"{files}/out/result.json", data=b'{"ok": true}', timeout=30)
        assert put.status_code == 201 and put.json()["size"] == 12
        listing = requests.get(f"{url}/api/runs/{run_id}/artifacts", params={"path": "out"})
        assert listing.json()["files"] == [{"path": "out/result.json", "is_dir": False, "size": 12}]
        assert requests.get(f"{files}/out/result.json", timeout=30).content == b'{"ok": true}'
    assert not (tmp_path / "artifacts").exists()  # nothing went to a local folder


def test_unsupported_roots_are_named() -> None:
    from runner.server.artifacts import ArtifactError

    with pytest.raises(ArtifactError, match="the gs:// scheme is not supported"):
        open_artifact_store("gs://bucket/x")
    with pytest.raises(ArtifactError, match="names no bucket"):
        open_artifact_store("s3:///x")
