#!/usr/bin/env bash
# Installs the Debian packages latent builds with, when they are missing. With --test, also (best
# effort: the srun test is skipped without them) Slurm's daemons and client and munge, for the
# private one-machine Slurm cluster the srun test starts.
set -euo pipefail
packages=(cmake ninja-build g++ libgtest-dev zlib1g-dev dataset-fashion-mnist libstb-dev libcli11-dev nlohmann-json3-dev openmpi-bin libopenmpi-dev clang libclang-rt-dev libomp-dev libopenblas-openmp-dev libsleef-dev)
optional=()
[ "${1:-}" = --test ] && optional=(slurmctld slurmd slurm-client munge)
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
# missing_of NAME...: those of the packages not installed, into the array `missing`.
missing_of() {
  missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
}
missing_of "${packages[@]}"
updated=no
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  updated=yes
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
missing_of ${optional[@]+"${optional[@]}"}
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing (for the srun test, if it can be): ${missing[*]}"
  { [ $updated = yes ] || $sudo_cmd apt-get update -qq; } &&
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" ||
    echo "install-deps: ${missing[*]} could not be installed: the srun test will be skipped"
fi
