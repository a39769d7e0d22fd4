#!/usr/bin/env bash
# The test suite: installs what is missing, builds everything (warnings are errors), runs ctest.
# Usage: scripts/test.sh [BUILD_DIR [extra cmake arguments...]]   (default build)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
dir=${1:-build}
shift || true
scripts/build.sh "$dir" -DKDCOM_WERROR=ON "$@"
ctest --test-dir "$dir" --output-on-failure -j"$(nproc)"
