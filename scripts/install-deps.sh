#!/usr/bin/env bash
# Installs the Debian 12 packages kdcom needs to build, test, fuzz and benchmark.
# Idempotent and non-interactive: prints nothing when everything is already present.
# Usage: scripts/install-deps.sh [--main] [--windows] [--big-endian] [--plot]
#   --main        only what building and running the tools needs (the README's main command):
#                 no test, benchmark or fuzzing packages, no clang, no tshark
#   --windows     adds the mingw-w64 cross compiler and Wine
#   --big-endian  adds an s390x cross compiler and qemu, for scripts/check-big-endian.sh
#   --plot        adds gnuplot, for scripts/plot-bulk-dump.sh
set -euo pipefail

tool_packages=(
  build-essential cmake ninja-build ccache pkg-config
  libasio-dev libboost-dev libfmt-dev libcli11-dev nlohmann-json3-dev libedit-dev
)
packages=("${tool_packages[@]}" tshark clang libclang-rt-14-dev libgtest-dev libgmock-dev libbenchmark-dev)
for arg in "$@"; do
  case "$arg" in
    --main) packages=("${tool_packages[@]}") ;;
    --windows) packages+=(g++-mingw-w64-x86-64 wine64) ;;
    --big-endian) packages+=(g++-s390x-linux-gnu qemu-user-static) ;;
    --plot) packages+=(gnuplot-nox) ;;
    *) echo "install-deps.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps.sh: missing packages: ${missing[*]}; run as root to install them" >&2
  exit 1
fi
echo "install-deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-deps.sh: apt-get failed" >&2
  exit 1
fi
