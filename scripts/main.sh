#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs kdcom-sim on its defaults: a simulated
# debugger, the bridge and a fake kernel behind guest shared memory, a 64 MiB dump checked byte for
# byte. Exit status 0 only if every read matched.
set -euo pipefail
cd "$(dirname "$0")/.."
# Only what kdcom-sim needs is installed and built (in its own build folder, so that the test
# build's settings are not touched): a fresh machine runs it in a few minutes.
scripts/install-deps.sh --main
KDCOM_BUILD_TARGETS=kdcom-sim scripts/build.sh build-main -DKDCOM_BUILD_TESTS=OFF -DKDCOM_BUILD_BENCH=OFF
build-main/tools/kdcom-sim
