#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs kdcom-sim on its defaults: a simulated
# debugger, the bridge and a fake kernel behind guest shared memory, a 64 MiB dump checked byte for
# byte. Exit status 0 only if every read matched.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
build/tools/kdcom-sim
