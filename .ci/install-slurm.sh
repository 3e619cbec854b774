#!/usr/bin/env bash
# Idempotent install of the Debian packages the SLURM tests need (Debian 12 / bookworm).
#   .ci/install-slurm.sh            -> slurmctld slurmd slurm-client munge
#   ACCOUNTING=1 .ci/install-slurm.sh -> also slurmdbd mariadb-server (sacct mode)
# Always exits 0: if the install is impossible (no root, no apt, no network) it says so and the
# SLURM tests skip with a message instead of failing.
set -u

pkgs=(slurmctld slurmd slurm-client munge)
bins=(slurmctld slurmd sinfo munged)
if [ "${ACCOUNTING:-0}" = "1" ]; then
    pkgs+=(slurmdbd mariadb-server)
    bins+=(slurmdbd mysqld_safe)
fi

missing=0
for b in "${bins[@]}"; do
    if ! command -v "$b" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$b" ]; then missing=1; fi
done
if [ "$missing" = "0" ]; then
    echo "install-slurm: packages already present (${pkgs[*]})"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        echo "install-slurm: SKIP: not root and no passwordless sudo; SLURM tests will be skipped" >&2
        exit 0
    fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-slurm: SKIP: apt-get not available; SLURM tests will be skipped" >&2
    exit 0
fi

t0=$(date +%s)
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d: do not let the packages' postinst scripts start system daemons (no systemd here
# anyway; on a host with systemd we do not want a system slurmctld/munged/mariadb either).
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && made_policy=1
fi
ok=1
$SUDO apt-get update -qq || ok=0
if [ "$ok" = "1" ]; then
    $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null || ok=0
fi
[ "$made_policy" = "1" ] && $SUDO rm -f "$policy"
if [ "$ok" = "1" ]; then
    echo "install-slurm: installed ${pkgs[*]} in $(( $(date +%s) - t0 )) s"
else
    echo "install-slurm: SKIP: apt-get install ${pkgs[*]} failed; SLURM tests will be skipped" >&2
fi
exit 0
