#!/usr/bin/env bash
# The main job: builds latent and trains a VAE on Fashion-MNIST (on the GPU when there is one, else
# the CPU), writing pictures (samples, reconstructions, interpolations, traversals, the latent
# space, loss curves), metrics.csv and summary.json into out/vae.
# Usage: scripts/run.sh [latent train options]   e.g. --epochs 5 --latent 16 --out out/small
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DLATENT_CUDA="${LATENT_CUDA:-AUTO}" >/dev/null
cmake --build build --target latent_cli -j "${JOBS:-$(nproc)}"
exec build/apps/latent train --epochs 20 --out out/vae --overwrite "$@"
