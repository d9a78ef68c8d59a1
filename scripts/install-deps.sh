#!/usr/bin/env bash
# Installs the Debian packages latent builds with, when they are missing.
set -euo pipefail
packages=(cmake ninja-build g++ libgtest-dev zlib1g-dev dataset-fashion-mnist libstb-dev libcli11-dev nlohmann-json3-dev openmpi-bin libopenmpi-dev clang libclang-rt-dev libomp-dev libopenblas-openmp-dev libsleef-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
