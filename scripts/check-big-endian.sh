#!/usr/bin/env bash
# Builds tests/portable/golden_check for s390x, a big-endian target, and runs it under qemu:
# the wire format must come out the same on a big-endian host.
# Usage: scripts/check-big-endian.sh [BUILD_DIR]   (default build-big-endian)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --big-endian
out=${1:-build-big-endian}
mkdir -p "$out"
# Boost.Endian is header-only and architecture-independent, so the host's Boost headers serve the
# target; only they are exposed, never the rest of the host's /usr/include.
mkdir -p "$out/include"
ln -sfn /usr/include/boost "$out/include/boost"
s390x-linux-gnu-g++ -std=c++20 -O2 -static -Wall -Wextra -Iinclude -isystem "$out/include" \
  tests/portable/golden_check.cpp -o "$out/golden_check"
qemu-s390x-static "$out/golden_check" tests/vectors examples
