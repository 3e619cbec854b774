"""Shared pytest fixtures. Keep this file small: one section per fixture family."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
TOOLS_DIR = TESTS_DIR.parent / "tools"  # development glue outside the library: versioning.py, slurm/cluster.py
for _dir in (TESTS_DIR, TOOLS_DIR):  # test helpers (rulestub.py, ...) and tools are imported by name
    if str(_dir) not in sys.path:
        sys.path.insert(0, str(_dir))


def _stub_slurm_conf() -> None:
    """Keep the SLURM executor plugin's start-up cost out of every `snakemake` the tests run.

    Snakemake imports every installed executor plugin at start; the SLURM plugin then runs `scontrol show
    config`. With the SLURM client installed but no slurm.conf (this CI machine after .ci/install-slurm.sh),
    scontrol looks the controller up by DNS SRV records, which waits for DNS time-outs where there is no
    network (~9 s per snakemake start). A conf naming a closed local port makes it fail at once. The SLURM
    tests' cluster sets its own SLURM_CONF for the commands it runs.
    """
    if os.environ.get("SLURM_CONF") or not shutil.which("scontrol"):
        return
    conf = Path(tempfile.mkdtemp(prefix="kdwsd-no-slurm-")) / "slurm.conf"
    conf.write_text("ClusterName=none\nSlurmctldHost=localhost\nSlurmctldPort=9\nMessageTimeout=1\n")
    os.environ["SLURM_CONF"] = str(conf)


_stub_slurm_conf()


# ---------------------------------------------------------------------------- the tiny run
@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory) -> Path:
    """One complete run of the whole DAG on the tiny config (`--configfile config/config.yaml
    tests/configs/tiny.yaml`), shared by the pipeline and heal tests, which only read it or copy it. It sits at
    the depth of the heal tests' copies (``<tmp>/w``): rules' code inputs are paths relative to the working
    directory, so a copy at another depth would look changed."""
    from test_pipeline import snakemake

    workdir = tmp_path_factory.mktemp("tiny") / "w"
    workdir.mkdir()
    res = snakemake(workdir, "--cores", "2")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-8000:]
    return workdir


# ---------------------------------------------------------------------------- SLURM
@pytest.fixture(scope="session")
def slurm_cluster():
    """A single-node SLURM cluster on 127.0.0.1 for the whole session (tools/slurm/cluster.py).

    Status mode: no accounting (plugin polls with squeue) unless KDWSD_SLURM_ACCOUNTING=1, which
    also starts MariaDB + slurmdbd (plugin polls with sacct). Skips, never fails, when the Debian
    packages are missing (install them with `.ci/install-slurm.sh`; ACCOUNTING=1 for slurmdbd).
    """
    from slurm.cluster import LocalSlurmCluster, missing_binaries

    accounting = os.environ.get("KDWSD_SLURM_ACCOUNTING", "0") == "1"
    if os.geteuid() != 0:
        pytest.skip("SLURM test cluster needs root (it starts munged as user munge and slurmd as root)")
    missing = missing_binaries(accounting)
    if missing:
        pkgs = "slurmctld slurmd slurm-client munge" + (" slurmdbd mariadb-server" if accounting else "")
        pytest.skip(
            f"SLURM test cluster: missing {', '.join(missing)}; install the Debian packages {pkgs} "
            f"({'ACCOUNTING=1 ' if accounting else ''}.ci/install-slurm.sh)"
        )

    # SIGTERM (e.g. a CI timeout) would end pytest without teardown and leave the daemons
    # running: turn it into KeyboardInterrupt so that the cluster is stopped below.
    def _sigterm(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, _sigterm)
    # Two fake GPUs: the jobs still ask for one each (--gpus=1), two GPU jobs may run at once.
    cluster = LocalSlurmCluster(accounting=accounting, gpus=2)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        signal.signal(signal.SIGTERM, previous)
