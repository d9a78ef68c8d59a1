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
if [ ! -f .deps/nlohmann-json/include/nlohmann/json.hpp ]; then
  [ -f /usr/include/nlohmann/json.hpp ] || { echo "no nlohmann-json: apt-get install nlohmann-json3-dev" >&2; exit 1; }
  mkdir -p .deps/nlohmann-json/include
  cp -r /usr/include/nlohmann .deps/nlohmann-json/include/
fi
# The command-line tool's picture writer and argument parser.
if [ ! -f .deps/stb/include/stb/stb_image_write.h ] && [ -f /usr/include/stb/stb_image_write.h ]; then
  mkdir -p .deps/stb/include/stb .deps/stb/lib
  cp /usr/include/stb/stb_image_write.h .deps/stb/include/stb/
  cp /usr/lib/x86_64-linux-gnu/libstb.a .deps/stb/lib/
fi
if [ ! -f .deps/cli11/include/CLI/CLI.hpp ] && [ -f /usr/include/CLI/CLI.hpp ]; then
  mkdir -p .deps/cli11/include
  cp -r /usr/include/CLI .deps/cli11/include/
fi
src=${LATENT_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
if [ -d "$src" ]; then
  mkdir -p .deps/fashion-mnist
  cp -u "$src"/*.gz .deps/fashion-mnist/
else
  echo "warning: no Fashion-MNIST at $src; data tests will skip on the GPU machine" >&2
fi
du -sh .deps
