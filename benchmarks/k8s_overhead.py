"""Kubernetes backend overhead on the API emulator vs the same container run by the Docker backend.

Usage: python benchmarks/k8s_overhead.py [ROUNDS]  (needs a Docker Engine and docker-registry)

For benchmarks/projects/docker (``python -c 'print(1)'`` in the host-Python test image), after
one untimed first run of each backend (builds and the first push), it alternates rounds of
``runner run -b kubernetes`` and ``runner run -b docker`` and prints the medians of:

- end to end: the whole ``runner run`` process, wall time;
- submit to running (kubernetes): from the process start to the emulator seeing the pod Running;
- pushes: how many re-runs pushed the image (``image_pushed`` on the record; 0 expected).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "benchmarks" / "projects" / "docker"
sys.path.insert(0, str(REPO))


def _env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNER_", "PYTHONPATH"))}
    env.update(RUNNER_HOME=home, PYTHONPATH=str(REPO))
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    return env


def _host_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))
        return str(probe.getsockname()[0])


def _run(home: str, *args: str) -> float:
    argv = [sys.executable, "-m", "runner", "run", str(PROJECT), "-q", *args]
    started = time.perf_counter()
    subprocess.run(argv, env=_env(home), cwd=home, capture_output=True, check=True)
    return time.perf_counter() - started


def _last_record(home: str) -> dict[str, object]:
    argv = [sys.executable, "-m", "runner", "runs", "list", "--json", "--limit", "1"]
    out = subprocess.run(argv, env=_env(home), capture_output=True, text=True, check=True).stdout
    record: dict[str, object] = json.loads(out)[0]
    return record


def main(rounds: int) -> None:
    import docker

    from tests.docker_images import ensure_python_image
    from tests.k8s_emulator import Emulator
    from tests.k8s_emulator.registry import local_registry

    client = docker.from_env()
    ensure_python_image(client)
    work = Path(tempfile.mkdtemp(prefix="bench-k8s-"))
    with local_registry(work) as registry:
        emulator = Emulator(client).start()
        try:
            config = work / "k8s.json"
            config.write_text(
                json.dumps(
                    {
                        "kubeconfig": str(emulator.write_kubeconfig(work / "kubeconfig")),
                        "repository-uri": f"{registry}/bench/k8s",
                        "tracking-uri": f"http://{_host_address()}:9",
                    }
                )
            )
            homes = {"kubernetes": str(work / "k8s-home"), "docker": str(work / "docker-home")}
            args = {
                "kubernetes": ("-b", "kubernetes", "-c", str(config)),
                "docker": ("-b", "docker"),
            }
            for name, home in homes.items():
                os.makedirs(home)
                _run(home, *args[name])  # untimed: builds, the first push
            times: dict[str, list[float]] = {name: [] for name in homes}
            to_running: list[float] = []
            pushes = 0
            for _ in range(rounds):
                for name, home in homes.items():
                    before = {p["metadata"]["uid"] for p in emulator.pods()}
                    started = time.perf_counter()
                    watcher = _RunningWatch(emulator, before, started)
                    times[name].append(_run(home, *args[name]))
                    if name == "kubernetes":
                        watcher.join()
                        if watcher.seconds is not None:
                            to_running.append(watcher.seconds)
                        env = _last_record(home)["environment"]
                        pushes += env.get("image_pushed") == "yes"  # type: ignore[union-attr]
                    else:
                        watcher.stop()
        finally:
            emulator.close()
    for name, samples in times.items():
        median, least = statistics.median(samples), min(samples)
        print(f"{name}: end to end median {median:.3f} s, min {least:.3f} s")
    if to_running:
        median = statistics.median(to_running)
        print(f"kubernetes: submit (process start) to pod Running median {median:.3f} s")
    print(f"kubernetes re-runs that pushed the image: {pushes} of {rounds}")
    print(f"load average: {os.getloadavg()}")


class _RunningWatch(threading.Thread):
    """Watches the emulator's store for a new pod reaching Running (5 ms resolution)."""

    def __init__(self, emulator: object, before: set[str], started: float) -> None:
        super().__init__(daemon=True)
        self.emulator, self.before, self.started = emulator, before, started
        self.seconds: float | None = None
        self._halt = threading.Event()
        self.start()

    def run(self) -> None:
        store = self.emulator.store  # type: ignore[attr-defined]
        while not self._halt.is_set():
            for pod in store.list("Pod", None)[0]:
                new = pod["metadata"]["uid"] not in self.before
                if new and pod["status"].get("phase") in ("Running", "Succeeded", "Failed"):
                    self.seconds = time.perf_counter() - self.started
                    return
            if time.perf_counter() - self.started > 120:
                return
            time.sleep(0.005)

    def stop(self) -> None:
        self._halt.set()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
