"""A throw-away single-node SLURM cluster on 127.0.0.1 for tests and for trying the SLURM profile.

    with LocalSlurmCluster(accounting=False) as cluster:
        subprocess.run(["sbatch", "--wrap", "hostname"], env=cluster.env, check=True)
        print(cluster.job_history())

What it does (Debian 12 packages slurmctld/slurmd/slurm-client/munge 22.05, plus slurmdbd and
mariadb-server for ``accounting=True``; ``.ci/install-slurm.sh`` installs them):

* Everything lives in one temporary directory: slurm.conf, gres.conf, slurmdbd.conf, a fresh munge
  key and socket, state/spool directories, pid and log files, the MariaDB data directory.
  Nothing under /etc, /run or /var is written, non-default TCP ports are picked at random, so a
  system SLURM/munge/MariaDB on the same host is neither used nor disturbed.
* Daemons run in the foreground, each in its own session/process group (``start_new_session``):
  munged (as user ``munge``), [mariadbd, slurmdbd,] slurmctld, ``slurmd -N localhost``.
  ``stop()`` cancels the cluster's jobs, then signals only these process groups (TERM, then KILL),
  then kills leftover job processes (slurmstepd and job steps, which SLURM puts in new sessions)
  identified by a marker variable in their environment that only this instance sets, and finally
  removes the temporary directory. It never touches processes it did not start.
* The node has the machine's CPUs and memory (``slurmd -C``), no cgroups
  (proctrack/linuxproc, task/none), ``MinJobAge`` 600 s so that ``squeue`` still reports finished
  jobs (the executor plugin's squeue status mode needs this), and optionally fake GPUs
  (``gpus=N``: a ``gpu`` GRES without device files) so that ``--gpus=1`` requests are scheduled on
  a machine without a GPU.
* Without accounting, finished jobs are recorded by ``jobcomp/filetxt`` (``job_history()`` reads
  that file plus ``squeue``); with accounting, MariaDB + slurmdbd run and ``job_history()`` uses
  ``sacct``.

Command line (used by scripts/slurm/start-local-cluster.sh / stop-local-cluster.sh)::

    python tests/slurm_cluster.py start [--accounting] [--gpus N] [--dir DIR]   # prints env file
    python tests/slurm_cluster.py stop --dir DIR
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REQUIRED_BINARIES = ("munged", "slurmctld", "slurmd", "sinfo", "squeue", "sbatch", "scancel")
ACCOUNTING_BINARIES = ("slurmdbd", "sacct", "mariadbd", "mariadb-install-db", "mariadb")
CLIENT_COMMANDS = ("srun", "sbatch", "salloc", "squeue", "scancel", "sinfo", "scontrol", "sacct", "sacctmgr")
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
MARKER_VAR = "KDWSD_SLURM_HARNESS"


def _log(msg: str) -> None:
    print(f"[slurm-harness] {msg}", file=sys.stderr, flush=True)


def find_binary(name: str) -> str | None:
    path = shutil.which(name)
    if path:
        return path
    for d in SBIN_DIRS:
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def missing_binaries(accounting: bool = False) -> list[str]:
    """Names of the binaries the harness needs but cannot find (empty list: all present)."""
    names = REQUIRED_BINARIES + (ACCOUNTING_BINARIES if accounting else ())
    missing = [n for n in names if find_binary(n) is None]
    try:
        pwd.getpwnam("munge")
    except KeyError:
        missing.append("user 'munge'")
    return missing


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _world_traversable(path: Path) -> bool:
    """True if every directory from / to ``path`` is o+x (user munge can reach it)."""
    path = path.resolve()
    return all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents])


class SlurmHarnessError(RuntimeError):
    pass


class LocalSlurmCluster:
    """Single-node SLURM cluster on 127.0.0.1 in a temporary directory (see module docstring)."""

    def __init__(
        self,
        workdir: Path | None = None,
        accounting: bool = False,
        gpus: int = 1,
        partition: str = "debug",
        cluster_name: str = "kdwsd",
        min_job_age: int = 600,
        cleanup: bool = True,
        start_timeout: float = 60.0,
    ):
        self._own_workdir = workdir is None
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="kdwsd-slurm-"))
            os.chmod(workdir, 0o755)  # user munge must reach workdir/munge
        self.workdir = Path(workdir).resolve()
        self.accounting = accounting
        self.gpus = gpus
        self.partition = partition
        self.cluster_name = cluster_name
        self.min_job_age = min_job_age
        self.cleanup = cleanup
        self.start_timeout = start_timeout
        self.marker = f"{self.workdir}:{os.getpid()}:{time.time_ns()}"
        self.procs: dict[str, subprocess.Popen] = {}  # name -> Popen, in start order
        self.start_seconds: float | None = None
        self.stop_seconds: float | None = None
        self.started_at: float | None = None
        self._munge_dir: Path | None = None
        self._munge_dir_separate = False
        self._started = False
        self.conf = self.workdir / "etc" / "slurm.conf"
        self.logdir = self.workdir / "log"
        self.jobcomp = self.workdir / "log" / "jobcomp.txt"
        self.env: dict[str, str] = {}

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> LocalSlurmCluster:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ start
    def start(self) -> LocalSlurmCluster:
        if os.geteuid() != 0:
            raise SlurmHarnessError("LocalSlurmCluster must run as root (munged runs as user munge)")
        missing = missing_binaries(self.accounting)
        if missing:
            raise SlurmHarnessError(f"missing SLURM/munge binaries: {', '.join(missing)}")
        t0 = time.monotonic()
        self.started_at = time.time()
        self._started = True
        try:
            self._prepare_dirs()
            self._start_munged()
            if self.accounting:
                self._start_mariadb()
                self._start_slurmdbd()
            self._write_slurm_conf()
            self._spawn("slurmctld", [find_binary("slurmctld"), "-D", "-i", "-f", str(self.conf)])
            self._wait_for(self._ctld_up, "slurmctld to answer", "slurmctld")
            self._spawn("slurmd", [find_binary("slurmd"), "-D", "-N", "localhost", "-f", str(self.conf)])
            self._wait_for(self._node_idle, "node localhost to become idle", "slurmd")
            if self.accounting:
                self._wait_for(self._sacct_ok, "sacct to answer", "slurmdbd")
        except BaseException:
            _log("start failed; stopping what was started")
            self._dump_logs()
            self.stop()
            raise
        self.start_seconds = time.monotonic() - t0
        _log(
            f"cluster up in {self.start_seconds:.1f} s "
            f"(accounting={'slurmdbd+mariadb' if self.accounting else 'none'}, gpus={self.gpus}, "
            f"dir={self.workdir}, SLURM_CONF={self.conf})"
        )
        return self

    def _prepare_dirs(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for sub in ("etc", "state", "spool", "log", "run", "db", "bin"):
            (self.workdir / sub).mkdir(exist_ok=True)
        # munged refuses keys/sockets in directories writable by others and runs as user munge,
        # which must be able to reach the directory: use workdir/munge when possible, else a
        # private directory under /tmp (sticky, world-traversable).
        if _world_traversable(self.workdir):
            self._munge_dir = self.workdir / "munge"
            self._munge_dir.mkdir(exist_ok=True)
        else:
            self._munge_dir = Path(tempfile.mkdtemp(prefix="kdwsd-munge-", dir="/tmp"))
            self._munge_dir_separate = True
        munge = pwd.getpwnam("munge")
        os.chown(self._munge_dir, munge.pw_uid, munge.pw_gid)
        # munged wants its socket directory o+x and not writable by others; the key stays 0600.
        os.chmod(self._munge_dir, 0o755)
        self.munge_socket = self._munge_dir / "munge.socket"
        self.env = dict(os.environ)
        self.env.update({"SLURM_CONF": str(self.conf), MARKER_VAR: self.marker})
        # Client commands must not pick up a cluster selection from the caller's environment.
        for var in ("SLURM_CLUSTERS", "SQUEUE_CLUSTERS", "SACCT_CLUSTERS"):
            self.env.pop(var, None)
        sbin = ":".join(d for d in SBIN_DIRS if d not in self.env.get("PATH", "").split(":"))
        if sbin:
            self.env["PATH"] = self.env.get("PATH", "") + ":" + sbin
        # Client wrappers with SLURM_CONF built in, first on PATH. Needed because the Snakemake
        # job step (snakemake-executor-plugin-slurm-jobstep 0.6.1) removes every SLURM_* variable
        # except the job ids before it calls `srun` inside the job, SLURM_CONF included; srun then
        # looks for /etc/slurm/slurm.conf (a real cluster's path) and fails with "Could not
        # establish a configuration source". The wrappers keep the test cluster out of /etc.
        bindir = self.workdir / "bin"
        bindir.mkdir(exist_ok=True)
        for name in CLIENT_COMMANDS:
            real = find_binary(name)
            if real:
                w = bindir / name
                w.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec {real} "$@"\n')
                w.chmod(0o755)
        self.env["PATH"] = f"{bindir}:{self.env['PATH']}"

    def _spawn(self, name: str, argv: list, user: str | None = None, stdin=None) -> subprocess.Popen:
        kwargs = {}
        if user is not None:
            pw = pwd.getpwnam(user)
            kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        with open(self.logdir / f"{name}.stdout", "ab") as log:
            proc = subprocess.Popen(
                [str(a) for a in argv],
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.workdir,
                start_new_session=True,  # own process group: stop() signals exactly this group
                **kwargs,
            )
        self.procs[name] = proc
        return proc

    def _wait_for(self, check, what: str, proc_name: str | None = None, timeout: float | None = None):
        deadline = time.monotonic() + (timeout or self.start_timeout)
        while time.monotonic() < deadline:
            if proc_name and self.procs[proc_name].poll() is not None:
                raise SlurmHarnessError(
                    f"{proc_name} exited with {self.procs[proc_name].returncode} while waiting for {what}"
                )
            if check():
                return
            time.sleep(0.2)
        raise SlurmHarnessError(f"timed out after {timeout or self.start_timeout:.0f} s waiting for {what}")

    def _run(self, argv: list, check: bool = False, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(a) for a in argv],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            **kw,
        )

    # munge --------------------------------------------------------------------------
    def _start_munged(self) -> None:
        munge = pwd.getpwnam("munge")
        key = self._munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chown(key, munge.pw_uid, munge.pw_gid)
        os.chmod(key, 0o600)
        d = self._munge_dir
        self._spawn(
            "munged",
            [
                find_binary("munged"),
                "--foreground",
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--log-file={d / 'munged.log'}",
                f"--pid-file={d / 'munged.pid'}",
                f"--seed-file={d / 'munged.seed'}",
                "--num-threads=2",
            ],
            user="munge",
        )

        def munge_ok() -> bool:
            if not self.munge_socket.exists():
                return False
            cred = self._run(["munge", "-n", "-S", self.munge_socket], timeout=5)
            if cred.returncode != 0:
                return False
            return self._run(["unmunge", "-S", self.munge_socket], input=cred.stdout, timeout=5).returncode == 0

        if find_binary("munge") and find_binary("unmunge"):
            self._wait_for(munge_ok, "munged to issue credentials", "munged")
        else:
            self._wait_for(self.munge_socket.exists, "the munge socket", "munged")

    # mariadb + slurmdbd ---------------------------------------------------------------
    def _start_mariadb(self) -> None:
        datadir = self.workdir / "db" / "data"
        self.db_socket = self.workdir / "db" / "mysqld.sock"
        self.db_port = _free_port()
        self.db_password = os.urandom(12).hex()
        r = self._run(
            [
                find_binary("mariadb-install-db"),
                "--no-defaults",
                "--user=root",
                f"--datadir={datadir}",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            timeout=120,
        )
        if r.returncode != 0:
            raise SlurmHarnessError(f"mariadb-install-db failed:\n{r.stdout}\n{r.stderr}")
        # mariadbd directly (not mysqld_safe): one foreground process in our process group, no
        # restart-on-kill loop, no /run/mysqld, no /etc/mysql configuration (--no-defaults).
        self._spawn(
            "mariadbd",
            [
                find_binary("mariadbd"),
                "--no-defaults",
                "--user=root",
                f"--datadir={datadir}",
                f"--socket={self.db_socket}",
                f"--port={self.db_port}",
                "--bind-address=127.0.0.1",
                f"--pid-file={self.workdir / 'run' / 'mariadbd.pid'}",
                f"--log-error={self.logdir / 'mariadbd.log'}",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=128M",
                "--innodb-lock-wait-timeout=900",
                "--max-connections=50",
            ],
        )

        def sql(stmt: str) -> subprocess.CompletedProcess:
            return self._run(
                [find_binary("mariadb"), "--no-defaults", "-S", self.db_socket, "-u", "root", "-e", stmt],
                timeout=10,
            )

        self._wait_for(lambda: sql("SELECT 1").returncode == 0, "mariadbd to accept connections", "mariadbd")
        r = sql(
            f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{self.db_password}'; "
            f"CREATE USER 'slurm'@'localhost' IDENTIFIED BY '{self.db_password}'; "
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; "
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
        )
        if r.returncode != 0:
            raise SlurmHarnessError(f"creating the MariaDB user failed: {r.stderr}")

    def _start_slurmdbd(self) -> None:
        self.dbd_port = _free_port()
        conf = self.conf.parent / "slurmdbd.conf"
        conf.write_text(
            "\n".join(
                [
                    "# written by tests/slurm_cluster.py",
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    "DbdHost=localhost",
                    "DbdAddr=127.0.0.1",
                    f"DbdPort={self.dbd_port}",
                    "SlurmUser=root",
                    f"LogFile={self.logdir / 'slurmdbd.log'}",
                    f"PidFile={self.workdir / 'run' / 'slurmdbd.pid'}",
                    "DebugLevel=info",
                    "StorageType=accounting_storage/mysql",
                    "StorageHost=127.0.0.1",
                    f"StoragePort={self.db_port}",
                    "StorageUser=slurm",
                    f"StoragePass={self.db_password}",
                    "StorageLoc=slurm_acct_db",
                    "",
                ]
            )
        )
        os.chmod(conf, 0o600)  # slurmdbd refuses a world-readable slurmdbd.conf
        # slurmdbd reads slurmdbd.conf from the directory of SLURM_CONF (env of _spawn).
        self._spawn("slurmdbd", [find_binary("slurmdbd"), "-D"])

        def dbd_listening() -> bool:
            with socket.socket() as s:
                s.settimeout(0.5)
                return s.connect_ex(("127.0.0.1", self.dbd_port)) == 0

        self._wait_for(dbd_listening, "slurmdbd to listen", "slurmdbd")

    # slurmctld + slurmd ---------------------------------------------------------------
    def _node_hardware(self) -> dict[str, str]:
        """CPUs/sockets/cores/threads/RealMemory as slurmd itself measures them (``slurmd -C``)."""
        r = self._run([find_binary("slurmd"), "-C"], timeout=30)
        hw = dict(re.findall(r"(\w+)=(\S+)", r.stdout.splitlines()[0] if r.stdout else ""))
        if "CPUs" not in hw:
            mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
            hw = {"CPUs": str(os.cpu_count() or 1), "RealMemory": str(mem_kb // 1024)}
        return hw

    def _write_slurm_conf(self) -> None:
        hw = self._node_hardware()
        self.cpus = int(hw["CPUs"])
        self.real_memory = int(hw["RealMemory"])
        topo = " ".join(
            f"{k}={hw[k]}" for k in ("Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore") if k in hw
        )
        self.ctld_port = _free_port()
        self.slurmd_port = _free_port()
        w = self.workdir
        host = socket.gethostname().split(".")[0]
        gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        lines = [
            "# written by tests/slurm_cluster.py: single-node test cluster on 127.0.0.1",
            f"ClusterName={self.cluster_name}",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={self.ctld_port}",
            f"SlurmdPort={self.slurmd_port}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"StateSaveLocation={w / 'state'}",
            f"SlurmdSpoolDir={w / 'spool'}",
            f"SlurmctldPidFile={w / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={w / 'run' / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.logdir / 'slurmctld.log'}",
            f"SlurmdLogFile={self.logdir / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "MailProg=/bin/true",
            # no cgroups on this kind of machine (containers/VMs without systemd)
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "MpiDefault=none",
            "SwitchType=switch/none",
            "SchedulerType=sched/backfill",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "ReturnToService=2",
            # keep finished jobs visible to squeue (plugin status mode 'squeue')
            f"MinJobAge={self.min_job_age}",
            "KillWait=5",
            "InactiveLimit=0",
            "SlurmdTimeout=60",
            "JobCompType=jobcomp/filetxt",
            f"JobCompLoc={self.jobcomp}",
        ]
        if self.accounting:
            lines += [
                "AccountingStorageType=accounting_storage/slurmdbd",
                "AccountingStorageHost=localhost",
                f"AccountingStoragePort={self.dbd_port}",
                # slurmctld and sacct authenticate to slurmdbd with the munge socket given here
                # (AuthInfo is not used for that connection; without it: /run/munge/munge.socket.2)
                f"AccountingStoragePass={self.munge_socket}",
                "AccountingStoreFlags=job_comment",
                "AccountingStorageTRES=gres/gpu",
                "JobAcctGatherType=jobacct_gather/linux",
                "JobAcctGatherFrequency=30",
            ]
        else:
            lines += ["AccountingStorageType=accounting_storage/none", "JobAcctGatherType=jobacct_gather/none"]
        if self.gpus:
            lines.append("GresTypes=gpu")
        lines += [
            f"NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost CPUs={self.cpus} {topo} "
            f"RealMemory={self.real_memory}{gres} State=UNKNOWN",
            f"PartitionName={self.partition} Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
        self.conf.write_text("\n".join(lines))
        if self.gpus:
            # Fake GPUs: gres/gpu wants one device file per GPU (without File= slurmd reports 0 and
            # the node goes INVAL). Harmless character devices stand in; no real device is bound,
            # enough to schedule the profile's --gpus requests on a machine without a GPU.
            fake = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]
            if self.gpus > len(fake):
                raise SlurmHarnessError(f"at most {len(fake)} fake GPUs are supported")
            (self.conf.parent / "gres.conf").write_text(
                "".join(f"NodeName=localhost Name=gpu File={f}\n" for f in fake[: self.gpus])
            )

    def _ctld_up(self) -> bool:
        return self._run(["scontrol", "ping"], timeout=10).stdout.find("UP") >= 0

    def _node_idle(self) -> bool:
        r = self._run(["sinfo", "-h", "-N", "-o", "%N %t|%E"], timeout=10)
        state = r.stdout.strip()
        if re.match(r"localhost (inval|drain|drng|down)", state):
            raise SlurmHarnessError(f"node localhost did not come up: {state}")
        return r.returncode == 0 and state.startswith("localhost idle")

    def _sacct_ok(self) -> bool:
        return self._run(["sacct", "-n", "-X"], timeout=10).returncode == 0

    # ------------------------------------------------------------------ queries
    def squeue(self) -> list[dict[str, str]]:
        """All jobs squeue still knows (running and, for MinJobAge seconds, finished)."""
        r = self._run(["squeue", "-h", "--states=all", "-o", "%i|%j|%T|%k|%M"], timeout=30)
        out = []
        for line in r.stdout.splitlines():
            parts = line.split("|")
            if len(parts) == 5:
                out.append(dict(zip(("JobId", "JobName", "State", "Comment", "Elapsed"), parts, strict=True)))
        return out

    def job_history(self) -> list[dict[str, str]]:
        """Jobs this cluster has seen: ``sacct`` with accounting, else the jobcomp file + squeue.

        Each entry has at least JobId, JobName, State; Comment (``rule_<name>...`` for jobs
        submitted by the Snakemake plugin) when known.
        """
        jobs: dict[str, dict[str, str]] = {}
        if self.accounting:
            start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime((self.started_at or time.time()) - 60))
            r = self._run(
                ["sacct", "-X", "-P", "-n", "-S", start, "--format=JobID,JobName%60,State,Comment%100,ExitCode"],
                timeout=30,
            )
            for line in r.stdout.splitlines():
                parts = line.split("|")
                if len(parts) >= 5:
                    jobs[parts[0]] = {
                        "JobId": parts[0],
                        "JobName": parts[1],
                        "State": parts[2].split()[0],
                        "Comment": parts[3],
                        "ExitCode": parts[4],
                        "source": "sacct",
                    }
        if self.jobcomp.exists():
            for line in self.jobcomp.read_text().splitlines():
                kv = dict(re.findall(r"(\w+)=(\S*)", line))
                if "JobId" in kv and kv["JobId"] not in jobs:
                    jobs[kv["JobId"]] = {
                        "JobId": kv["JobId"],
                        "JobName": kv.get("Name", ""),
                        "State": kv.get("JobState", ""),
                        "ExitCode": kv.get("ExitCode", ""),
                        "source": "jobcomp",
                    }
        for q in self.squeue():
            entry = jobs.setdefault(q["JobId"], {**q, "source": "squeue"})
            if q.get("Comment") and not entry.get("Comment"):
                entry["Comment"] = q["Comment"]
            if entry["source"] == "squeue":
                entry["State"] = q["State"]
        return sorted(jobs.values(), key=lambda j: int(re.match(r"\d+", j["JobId"]).group(0)))

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        if not self._started:
            return
        t0 = time.monotonic()
        self._started = False
        # 1. cancel this cluster's jobs (all jobs it knows are ours) and give them KillWait to end.
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            with contextlib.suppress(Exception):
                ids = [
                    j["JobId"]
                    for j in self.squeue()
                    if j["State"] in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED")
                ]
                if ids:
                    self._run(["scancel", *ids], timeout=15)
                    deadline = time.monotonic() + 10
                    while time.monotonic() < deadline and any(
                        j["State"] in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING") for j in self.squeue()
                    ):
                        time.sleep(0.3)
        # 2. signal the daemons' process groups, newest first (slurmd, slurmctld, slurmdbd, ...).
        for name, proc in reversed(list(self.procs.items())):
            self._terminate_group(name, proc)
        # 3. job processes that outlived slurmd (slurmstepd and job steps start their own sessions):
        #    only processes carrying this instance's marker in their environment.
        self._kill_marked_leftovers()
        self.procs.clear()
        # 4. temporary state.
        if self.cleanup:
            if self._munge_dir_separate and self._munge_dir:
                shutil.rmtree(self._munge_dir, ignore_errors=True)
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            else:
                for sub in ("etc", "state", "spool", "log", "run", "db", "munge", "bin"):
                    shutil.rmtree(self.workdir / sub, ignore_errors=True)
        self.stop_seconds = time.monotonic() - t0
        _log(f"cluster stopped in {self.stop_seconds:.1f} s (cleanup={self.cleanup})")

    @staticmethod
    def _terminate_group(name: str, proc: subprocess.Popen, grace: float = 10.0) -> None:
        if proc.poll() is not None:
            # the leader is gone; its group may still hold children
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _log(f"{name} (pid {proc.pid}) ignored SIGTERM for {grace:.0f} s; sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)

    def _marked_pids(self) -> list[int]:
        needle = f"{MARKER_VAR}={self.marker}".encode()
        protected = {os.getpid(), os.getppid()}
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in protected:
                continue
            try:
                env = (entry / "environ").read_bytes()
            except OSError:
                continue
            if needle in env.split(b"\0"):
                pids.append(int(entry.name))
        return pids

    def _kill_marked_leftovers(self) -> None:
        pids = self._marked_pids()
        if not pids:
            return
        _log(f"killing {len(pids)} leftover job process(es) of this cluster: {pids}")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self._marked_pids():
            time.sleep(0.1)

    def _dump_logs(self, tail: int = 30) -> None:
        for f in sorted(self.logdir.glob("*")) + ([self._munge_dir / "munged.log"] if self._munge_dir else []):
            with contextlib.suppress(OSError):
                lines = f.read_text(errors="replace").splitlines()[-tail:]
                if lines:
                    _log(f"--- {f.name} (last {len(lines)} lines)\n" + "\n".join(lines))

    # ------------------------------------------------------------------ helpers for scripts
    def env_file_text(self) -> str:
        return f'export SLURM_CONF={self.conf}\nexport PATH="{self.workdir / "bin"}:$PATH:{":".join(SBIN_DIRS)}"\n'

    def describe(self) -> dict:
        return {
            "workdir": str(self.workdir),
            "slurm_conf": str(self.conf),
            "accounting": self.accounting,
            "pids": {name: p.pid for name, p in self.procs.items()},
            "start_seconds": self.start_seconds,
        }


# ---------------------------------------------------------------------- command line
def _cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start a cluster and leave it running (foreground keeper process)")
    s.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "kdwsd-slurm")
    s.add_argument("--accounting", action="store_true", help="also start MariaDB + slurmdbd (sacct)")
    s.add_argument("--gpus", type=int, default=1, help="fake GPUs (GRES gpu) on the node; 0 for none")
    t = sub.add_parser("stop", help="stop the cluster started with 'start --dir DIR'")
    t.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "kdwsd-slurm")
    a = ap.parse_args(argv)

    if a.cmd == "start":
        # The keeper process owns the daemons: it stays in the background and stops the cluster
        # (same code path as the tests) on SIGTERM/SIGINT from stop.
        a.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(a.dir, 0o755)
        keeper_pid = a.dir / "keeper.pid"
        if keeper_pid.exists():
            print(f"a cluster seems to run already (keeper pid file {keeper_pid}); stop it first", file=sys.stderr)
            return 1
        cluster = LocalSlurmCluster(a.dir, accounting=a.accounting, gpus=a.gpus)
        stop_now = False

        def _handler(signum, frame):
            nonlocal stop_now
            stop_now = True

        signal.signal(signal.SIGTERM, _handler)
        signal.signal(signal.SIGINT, _handler)
        cluster.start()
        keeper_pid.write_text(str(os.getpid()))
        (a.dir / "env.sh").write_text(cluster.env_file_text())
        (a.dir / "cluster.json").write_text(json.dumps(cluster.describe(), indent=1))
        print(f"READY {a.dir / 'env.sh'}", flush=True)
        try:
            while not stop_now:
                time.sleep(0.5)
        finally:
            cluster.stop()
            for f in ("keeper.pid", "env.sh", "cluster.json", "keeper.log"):
                with contextlib.suppress(FileNotFoundError):
                    (a.dir / f).unlink()
            with contextlib.suppress(OSError):
                a.dir.rmdir()
        return 0

    keeper_pid = a.dir / "keeper.pid"
    if not keeper_pid.exists():
        print(f"no cluster running in {a.dir} (no keeper.pid)", file=sys.stderr)
        return 1
    pid = int(keeper_pid.read_text())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            print("stopped")
            return 0
        time.sleep(0.2)
    print(f"keeper {pid} did not stop within 60 s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(_cli())
