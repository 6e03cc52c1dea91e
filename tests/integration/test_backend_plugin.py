"""A third-party backend registered under `runner.backends` is found and used like `local`."""

from __future__ import annotations

import os
from pathlib import Path

from tests.helpers import records, run_cli

HELLO = Path(__file__).resolve().parents[2] / "sample_projects" / "hello"

TINY_BACKEND = '''
"""A tiny backend: runs the command locally but prefixes every output line."""
import subprocess
from runner.backend import BaseBackend, ExitInfo, LogChunk, Prepared
from runner.status import RunStatus


class Handle:
    def __init__(self, proc):
        self.proc = proc

    def logs(self):
        for line in self.proc.stdout:
            yield LogChunk("stdout", b"[tiny] " + line)

    def wait(self, timeout=None):
        code = self.proc.wait(timeout)
        return ExitInfo(RunStatus.FINISHED if code == 0 else RunStatus.FAILED, code)

    def status(self):
        return RunStatus.RUNNING if self.proc.poll() is None else self.wait().status

    def cancel(self, grace=10.0):
        self.proc.terminate()


class TinyBackend(BaseBackend):
    name = "tiny"
    config_schema = {"type": "object", "properties": {"tag": {"type": "string"}},
                     "additionalProperties": False}

    def prepare(self, request):
        return Prepared(request, {"tiny_tag": request.config.get("tag", "none")})

    def launch(self, prepared):
        request = prepared.request
        env = {**__import__("os").environ, **request.env}
        proc = subprocess.Popen(["bash", "-c", request.command], cwd=request.work_dir,
                                env=env, stdout=subprocess.PIPE)
        return Handle(proc)
'''


def _install_plugin(site: Path) -> dict[str, str]:
    """A real distribution on PYTHONPATH: a module plus a dist-info with entry points."""
    site.mkdir(parents=True)
    (site / "tiny_backend.py").write_text(TINY_BACKEND)
    dist = site / "tiny_backend-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tiny-backend\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[runner.backends]\ntiny = tiny_backend:TinyBackend\n")
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path}


def test_plugin_backend_runs_through_the_registry(tmp_path: Path) -> None:
    env = _install_plugin(tmp_path / "site")
    result = run_cli("run", str(HELLO), "-b", "tiny", "-c", '{"tag": "t1"}', env=env)
    assert result.returncode == 0, result.stderr
    assert "[tiny] Hello, world!" in result.stdout
    [rec] = records()
    assert rec["backend"] == "tiny"
    assert rec["environment"]["tiny_tag"] == "t1"


def test_plugin_config_is_validated_against_its_schema(tmp_path: Path) -> None:
    env = _install_plugin(tmp_path / "site")
    result = run_cli("run", str(HELLO), "-b", "tiny", "-c", '{"tag": 5}', env=env)
    assert result.returncode == 1
    assert "invalid backend config for 'tiny': tag: 5 is not of type 'string'" in result.stderr
    assert records() == []


def test_unknown_backend_lists_plugins_too(tmp_path: Path) -> None:
    env = _install_plugin(tmp_path / "site")
    result = run_cli("run", str(HELLO), "-b", "nope", env=env)
    assert result.returncode == 1
    listed = result.stderr.split("available backends:")[1].split()
    assert {"local", "tiny"} <= {name.strip(",") for name in listed}
