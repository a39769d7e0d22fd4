#!/usr/bin/env bash
# Cross-builds the library, the Windows transports and their tests for 64-bit Windows with Debian's
# mingw-w64, and runs the tests under Wine.
# Usage: scripts/check-windows.sh [BUILD_DIR]   (default build-windows)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --windows
dir=${1:-build-windows}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [[ ! -f "$dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$dir" -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake -DCMAKE_BUILD_TYPE=Release \
    -DKDCOM_WERROR=ON -DKDCOM_BUILD_TOOLS=OFF -DKDCOM_BUILD_BENCH=OFF -DKDCOM_BUILD_FUZZERS=OFF "${launcher[@]}" >/dev/null
fi
cmake --build "$dir" -- --quiet
# Wine keeps its prefix in the build tree, away from $HOME. Make it first, alone (about 7 s): two
# tests starting Wine at once on a missing prefix race to create it, and one of them fails.
export WINEPREFIX="$PWD/$dir/wine-prefix" WINEDEBUG=-all
if [[ ! -d "$WINEPREFIX" ]]; then
  /usr/lib/wine/wine64 wineboot --init >/dev/null 2>&1 || true
  /usr/lib/wine/wineserver -w || true
fi
ctest --test-dir "$dir" --output-on-failure -j"$(nproc)"
