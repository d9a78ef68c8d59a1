#!/usr/bin/env bash
# The PyTorch side of the benchmarks (bench/README.md): the VAE and the AE of bench_train in
# PyTorch, eager, as one CUDA graph per step and with torch.compile. JSON lines on stdout, progress on stderr. Without python3,
# torch or a GPU it prints one "skipped" line and exits 0. Arguments go to train.py
# (--quick, --modes eager,graph,compile, --models vae,ae, --configs 128,1024,1024-tf32,4096,65536,
# --compile-mode MODE).
#   bash bench/pytorch/run.sh > pytorch.jsonl
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
commit=${LATENT_COMMIT:-$(git -C "$here" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
python=${PYTHON:-python3}
if ! command -v "$python" > /dev/null 2>&1; then
  echo "{\"bench\":\"pytorch_train\",\"skipped\":\"no $python\",\"commit\":\"$commit\"}"
  exit 0
fi
# Compiled kernels go to a cache of their own, not into the tree.
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-${TMPDIR:-/tmp}/latent-torchinductor}
exec "$python" -B "$here/train.py" --commit "$commit" "$@"
