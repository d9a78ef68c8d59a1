#!/usr/bin/env bash
# Copies what a build on the GPU machine needs and cannot install there (it has no package manager
# and no network) into .deps/, which git ignores: the GoogleTest sources and the Fashion-MNIST
# files. Name .deps in the run's carry list.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps
if [ ! -f .deps/googletest/CMakeLists.txt ]; then
  [ -d /usr/src/googletest ] || { echo "no /usr/src/googletest: apt-get install googletest" >&2; exit 1; }
  rm -rf .deps/googletest
  cp -r /usr/src/googletest .deps/googletest
fi
src=${LATENT_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
if [ -d "$src" ]; then
  mkdir -p .deps/fashion-mnist
  cp -u "$src"/*.gz .deps/fashion-mnist/
else
  echo "warning: no Fashion-MNIST at $src; data tests will skip on the GPU machine" >&2
fi
du -sh .deps
