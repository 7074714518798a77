"""A real single-node Slurm for the tests: munged, slurmctld and slurmd from Debian's
packages, under one scratch directory, on free ports, stopped by PID.

docs/references.md ("A Slurm test cluster") says what it sets up and why. find_or_install() says why the cluster cannot run when it cannot.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "scancel",
           "scontrol", "sinfo")
PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
SBIN = ("/usr/sbin", "/sbin")


def _which(name: str) -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    return shutil.which(name, path=path)


def missing() -> list[str]:
    return [d for d in DAEMONS if _which(d) is None]


def find_or_install() -> str | None:
    """None when Slurm is here (installing it if allowed), else why it is not."""
    if not missing():
        return None
    if os.environ.get("PERCPU_NO_INSTALL"):
        return f"Slurm is not installed ({', '.join(missing())} missing) and PERCPU_NO_INSTALL is set"
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return (f"Slurm is not installed ({', '.join(missing())} missing) and cannot be "
                f"installed here (needs root and apt-get): apt-get install {' '.join(PACKAGES)}")
    try:
        subprocess.run(["apt-get", "install", "-y", "-qq", *PACKAGES], capture_output=True,
                       timeout=600, check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (subprocess.SubprocessError, OSError) as exc:
        return f"Slurm is not installed and apt-get install {' '.join(PACKAGES)} failed: {exc}"
    return None if not missing() else f"Slurm still missing after install: {missing()}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONF = """ClusterName=percputest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={b}/munge/munge.socket.2
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
StateSaveLocation={b}/state
SlurmdSpoolDir={b}/spool/%n
SlurmctldPidFile={b}/slurmctld.pid
SlurmdPidFile={b}/slurmd.%n.pid
SlurmctldLogFile={b}/log/slurmctld.log
SlurmdLogFile={b}/log/slurmd.%n.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
MaxArraySize={max_array}
NodeName=localhost CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class SlurmCluster:
    """munged + slurmctld + slurmd under base; env() is what a client needs."""

    def __init__(self, base: Path, *, max_array: int = 1001):
        self.base = base
        self.conf = base / "etc" / "slurm.conf"
        self.max_array = max_array
        self.procs: dict[str, subprocess.Popen] = {}
        self.undrained = 0

    def env(self) -> dict[str, str]:
        path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
        return {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path}

    def _run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(list(args), env=self.env(), capture_output=True, text=True,
                              timeout=timeout, check=False)

    def start(self) -> None:
        b = self.base
        for d in ("etc", "state", "spool/localhost", "log", "munge"):
            (b / d).mkdir(parents=True, exist_ok=True)
        os.chmod(b / "munge", 0o711)
        self.conf.write_text(CONF.format(b=b, ctld_port=_free_port(), slurmd_port=_free_port(),
                                         max_array=self.max_array))
        key = b / "munge" / "munge.key"
        if not key.exists():
            subprocess.run([_which("mungekey"), "-c", "-k", str(key)], check=True,
                           capture_output=True)
            os.chmod(key, 0o600)
        m = b / "munge"
        subprocess.run([_which("munged"), f"--key-file={key}", f"--socket={m}/munge.socket.2",
                        f"--pid-file={m}/munged.pid", f"--log-file={b}/log/munged.log",
                        f"--seed-file={m}/munged.seed"], check=True, capture_output=True)
        self.start_ctld()
        self._spawn("slurmd", _which("slurmd"), "-D", "-N", "localhost", "-f", str(self.conf))
        self.wait_idle()

    def _spawn(self, name: str, *cmd: str) -> None:
        log = open(self.base / "log" / f"{name}.stdout", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(list(cmd), env=self.env(), stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

    def start_ctld(self) -> None:
        self._spawn("slurmctld", _which("slurmctld"), "-D", "-f", str(self.conf))

    def kill_ctld(self) -> None:
        """SIGKILL slurmctld, as a crash would."""
        proc = self.procs.pop("slurmctld")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def wait_idle(self, timeout: float = 60) -> None:
        """Until the node takes jobs; a drained node (a lost job seen again: "Duplicate
        jobid") is returned to service, as an admin would."""
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            out = self._run("sinfo", "-h", "-N", "-o", "%T")
            state = out.stdout.strip()
            if out.returncode == 0 and state.rstrip("*") in ("idle", "mixed", "allocated"):
                return
            if "drain" in state:
                self._run("scontrol", "update", "nodename=localhost", "state=resume")
            time.sleep(0.2)
        raise RuntimeError(f"the Slurm node did not become ready (state {state!r}); see "
                           f"{self.base / 'log'}")

    @contextlib.contextmanager
    def admin(self):
        """An admin who returns drained nodes to service while the block runs (a
        slurmctld that lost running jobs drains the node a few seconds after its
        restart, when slurmd reports them: "Duplicate jobid")."""
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.5):
                out = self._run("sinfo", "-h", "-N", "-o", "%T")
                if "drain" in out.stdout:
                    self._run("scontrol", "update", "nodename=localhost", "state=resume")
                    self.undrained += 1

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def ensure_running(self) -> None:
        proc = self.procs.get("slurmctld")
        if proc is None or proc.poll() is not None:
            self.start_ctld()
        self.wait_idle()

    def cancel_all(self) -> None:
        """Cancel every job of this cluster (only the tests use it) and wait for the queue
        to empty."""
        self._run("scancel", "--user=root")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = self._run("squeue", "-h", "-o", "%i")
            if out.returncode == 0 and not out.stdout.strip():
                return
            time.sleep(0.2)

    def squeue(self) -> list[str]:
        return self._run("squeue", "-h", "-r", "-o", "%i").stdout.split()

    def stepds(self) -> list[int]:
        """PIDs of this cluster's slurmstepd processes (they carry its SLURM_CONF)."""
        mine = f"SLURM_CONF={self.conf}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if not fh.read().startswith(b"slurmstepd"):
                        continue
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    if mine in fh.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                continue
        return found

    def stop(self) -> None:
        for name in ("slurmd", "slurmctld"):
            proc = self.procs.pop(name, None)
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for pid in self.stepds():  # job steps slurmd left behind (they outlive it)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        pidfile = self.base / "munge" / "munged.pid"
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pass
