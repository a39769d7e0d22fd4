#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs kdcom-dump on the shipped sample session.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh build
build/tools/kdcom-dump examples/sample-session.hex
