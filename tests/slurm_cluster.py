"""A throwaway one-node Slurm cluster for tests: munged, slurmctld and slurmd (and optionally
slurmdbd on a throwaway MariaDB), all on 127.0.0.1 with a config, key and state of their own.

Like ``tests/pg_server.py``: the daemons are Debian's, the cluster lives in a temp dir, and it
is stopped (every job and daemon process of it killed) when the context ends.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")
ACCOUNTING_DAEMONS = ("slurmdbd", "mariadbd", "mariadb-install-db")
FAKE_GPUS = 2


class ClusterUnavailable(Exception):
    """The Slurm (or MariaDB) packages are not installed, or the cluster did not come up."""


def missing_tools(accounting: bool) -> list[str]:
    """The programs this machine lacks to start the cluster (empty when it can)."""
    wanted = DAEMONS + (ACCOUNTING_DAEMONS if accounting else ())
    return [tool for tool in wanted if shutil.which(tool, path=_sbin_path()) is None]


def _sbin_path() -> str:
    return os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class SlurmCluster:
    """A running cluster: ``env`` is what a client needs (SLURM_CONF); ``base`` its files."""

    base: Path
    conf: Path
    accounting: bool
    name: str
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *argv: str, check: bool = True, timeout: float = 60) -> str:
        """A Slurm client command against this cluster; its stdout."""
        result = subprocess.run(
            list(argv),
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise ClusterUnavailable(f"{' '.join(argv)} failed: {result.stderr.strip()}")
        return result.stdout

    def jobs(self) -> list[str]:
        """Ids of the jobs slurmctld has that are not over (pending, running, completing)."""
        out = self.run("squeue", "-h", "-o", "%i %T")
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    def job_field(self, job_id: str, key: str) -> str:
        """One field of ``scontrol show job``, e.g. JobState or RestartCnt."""
        out = self.run("scontrol", "-o", "show", "job", job_id)
        for token in out.split():
            name, _, value = token.partition("=")
            if name == key:
                return value
        raise KeyError(key)


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.write_text(text)
    path.chmod(mode)


def _slurm_conf(cluster: SlurmCluster, ports: dict[str, int], munge_socket: Path) -> str:
    base = cluster.base
    accounting = (
        "AccountingStorageType=accounting_storage/slurmdbd\n"
        f"AccountingStorageHost=localhost\nAccountingStoragePort={ports['dbd']}\n"
        f"AccountingStoragePass={munge_socket}\n"  # its munge socket, not the default one
        "JobAcctGatherType=jobacct_gather/linux\n"
        if cluster.accounting
        else "AccountingStorageType=accounting_storage/none\n"
        "JobAcctGatherType=jobacct_gather/none\n"
    )
    return f"""\
ClusterName={cluster.name}
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ports["ctld"]}
SlurmdPort={ports["slurmd"]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/slurmctld.log
SlurmdLogFile={base}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
{accounting}JobCompType=jobcomp/none
ReturnToService=2
MpiDefault=none
KillWait=3
MinJobAge=600
InactiveLimit=0
SlurmdTimeout=300
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 Gres=gpu:{FAKE_GPUS} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def _gres_conf(base: Path) -> str:
    lines = []
    for index in range(FAKE_GPUS):
        device = base / f"fake-gpu{index}"
        device.touch()  # an ordinary file: Slurm only needs a path to hand out
        lines.append(f"NodeName=localhost Name=gpu File={device}\n")
    return "".join(lines)


def _start(argv: list[str], env: dict[str, str], what: str) -> None:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise ClusterUnavailable(f"{what} did not start: {(result.stderr or result.stdout)[-800:]}")


def _start_munge(base: Path) -> Path:
    munge = base / "munge"
    munge.mkdir()
    munge.chmod(0o755)  # munged wants its socket directory reachable by every client
    key = munge / "munge.key"
    _write(key, "", 0o600)
    key.write_bytes(secrets.token_bytes(1024))  # a key of this cluster's own
    key.chmod(0o400)
    for path in (munge, key):
        shutil.chown(path, "munge", "munge")
    sock = munge / "munge.socket"
    argv = [
        "runuser", "-u", "munge", "--", "munged", f"--socket={sock}", f"--key-file={key}",
        f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log",
        f"--seed-file={munge}/munged.seed",
    ]  # fmt: skip
    _start(argv, dict(os.environ), "munged")
    return sock


def _start_mariadb(base: Path, port: int) -> None:
    data = base / "mariadb"
    data.mkdir()
    shutil.chown(data, "mysql", "mysql")
    install = ["mariadb-install-db", "--no-defaults", "--user=mysql", f"--datadir={data}"]
    _start([*install, "--skip-test-db", "--auth-root-authentication-method=normal"], {}, "mariadb")
    server = [
        "runuser", "-u", "mysql", "--", "mariadbd", "--no-defaults", f"--datadir={data}",
        f"--port={port}", "--bind-address=127.0.0.1", f"--socket={data}/mysqld.sock",
        f"--pid-file={data}/mysqld.pid", "--skip-grant-tables", "--skip-log-bin",
        "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
        f"--log-error={data}/error.log",
    ]  # fmt: skip
    subprocess.Popen(  # mariadbd does not fork: the teardown kills it by its pid file
        server,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait(lambda: _port_open(port), "MariaDB to listen", 60)


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _slurmdbd_conf(base: Path, ports: dict[str, int], munge_socket: Path) -> str:
    return f"""\
AuthType=auth/munge
AuthInfo=socket={munge_socket}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={ports["dbd"]}
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={ports["db"]}
StorageUser=root
StorageLoc=slurm_acct_db
PidFile={base}/slurmdbd.pid
LogFile={base}/slurmdbd.log
"""


def _wait(predicate: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise ClusterUnavailable(f"timed out waiting for {what}")
        time.sleep(0.1)


def _node_state(cluster: SlurmCluster) -> str:
    return cluster.run("sinfo", "-h", "-o", "%T", check=False).strip()


def _bring_node_up(cluster: SlurmCluster) -> None:
    """Fake GPUs leave the node INVALID (or DOWN) at first: resume it until it is idle."""
    deadline = time.monotonic() + 60
    while (state := _node_state(cluster)) != "idle":
        if time.monotonic() > deadline:
            raise ClusterUnavailable(f"node stayed {state!r}: {_logs(cluster.base)}")
        if state and not state.startswith(("unk", "idle")):
            cluster.run("scontrol", "update", "nodename=localhost", "state=resume", check=False)
        time.sleep(0.2)


def _logs(base: Path) -> str:
    tails = []
    for name in ("slurmctld.log", "slurmd.log", "slurmdbd.log"):
        with contextlib.suppress(OSError):
            tails.append(f"{name}: {(base / name).read_text(errors='replace')[-600:]}")
    return "\n".join(tails)


def _processes_of(conf: Path) -> list[int]:
    """Every process started for this cluster: daemons and jobs carry its SLURM_CONF."""
    marker = f"SLURM_CONF={conf}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def _kill_pid_file(path: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(path.read_text().split()[0]), signal.SIGKILL)


def _teardown(cluster: SlurmCluster) -> None:
    with contextlib.suppress(Exception):
        for job in cluster.jobs():
            cluster.run("scancel", "--signal=KILL", "--full", job, check=False, timeout=10)
    for name in ("slurmctld.pid", "slurmd.pid", "slurmdbd.pid", "mariadb/mysqld.pid"):
        _kill_pid_file(cluster.base / name)
    for pid in _processes_of(cluster.conf):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _kill_pid_file(cluster.base / "munge" / "munged.pid")
    shutil.rmtree(cluster.base, ignore_errors=True)


@contextlib.contextmanager
def slurm_cluster(accounting: bool = False, oci_conf: str = "") -> Iterator[SlurmCluster]:
    """Start a one-node cluster (with slurmdbd and MariaDB when ``accounting``); stop it after.
    ``oci_conf``, when given, is written as the ``oci.conf`` beside slurm.conf: the text may
    hold ``{base}``, replaced by the cluster's directory (e.g. for the runtime's state root).

    The base directory is world-traversable (munged runs as the ``munge`` user, MariaDB as
    ``mysql``); pytest's own temp dirs are private to root, so the cluster makes its own.
    """
    missing = missing_tools(accounting)
    if missing:
        raise ClusterUnavailable(f"not installed: {', '.join(missing)}")
    base = Path(tempfile.mkdtemp(prefix="runner-slurm-"))
    base.chmod(0o755)
    for sub in ("state", "spool"):
        (base / sub).mkdir()
    conf = base / "slurm.conf"
    cluster = SlurmCluster(base, conf, accounting, f"t{secrets.token_hex(4)}")
    cluster.env = {"SLURM_CONF": str(conf)}
    daemon_env = {**os.environ, **cluster.env, "PATH": _sbin_path()}
    try:
        if oci_conf:
            _write(base / "oci.conf", oci_conf.replace("{base}", str(base)))
        _boot(cluster, daemon_env)
        yield cluster
    finally:
        _teardown(cluster)


def _boot(cluster: SlurmCluster, env: dict[str, str]) -> None:
    ports = {name: _free_port() for name in ("ctld", "slurmd", "dbd", "db")}
    munge_socket = _start_munge(cluster.base)
    _write(cluster.conf, _slurm_conf(cluster, ports, munge_socket))
    _write(cluster.base / "gres.conf", _gres_conf(cluster.base))
    if cluster.accounting:
        _start_mariadb(cluster.base, ports["db"])
        dbd_conf = _slurmdbd_conf(cluster.base, ports, munge_socket)
        _write(cluster.base / "slurmdbd.conf", dbd_conf, 0o600)
        _start(["slurmdbd"], env, "slurmdbd")
        _wait(lambda: _port_open(ports["dbd"]), "slurmdbd to listen", 20)
    _start(["slurmctld"], env, "slurmctld")
    _start(["slurmd", "-N", "localhost"], env, "slurmd")
    _bring_node_up(cluster)
