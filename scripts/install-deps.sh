#!/usr/bin/env bash
# Installs the Debian 12 packages kdcom needs to build, test, fuzz and benchmark.
# Idempotent and non-interactive: prints nothing when everything is already present.
# Usage: scripts/install-deps.sh [--main] [--windows] [--big-endian] [--plot] [--vm]
#   --main        only what building and running the tools needs (the README's main command):
#                 no test, benchmark or fuzzing packages, no clang, no tshark
#   --windows     adds the mingw-w64 cross compiler and Wine
#   --big-endian  adds an s390x cross compiler and qemu, for scripts/check-big-endian.sh
#   --plot        adds gnuplot, for scripts/plot-bulk-dump.sh
#   --vm          adds QEMU (qemu-system-x86) and xz, and puts a guest kernel from Debian's
#                 linux-image-amd64 package in the VM cache folder (not installed as this host's
#                 kernel): its bzImage, and the uncompressed vmlinux QEMU boots directly (PVH), for
#                 scripts/check-qemu.sh. The folder: $KDCOM_VM_CACHE, or ~/.cache/kdcom-vm.
set -euo pipefail
vm=0

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
    --vm) packages+=(qemu-system-x86 xz-utils); vm=1 ;;
    *) echo "install-deps.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

# The guest kernel for --vm: Debian's own, taken from its package without installing it.
vm_kernel() {
  local cache=${KDCOM_VM_CACHE:-$HOME/.cache/kdcom-vm}
  [[ -s "$cache/vmlinux" && -s "$cache/vmlinuz" ]] && return 0
  local work package deb offset
  work=$(mktemp -d)
  package=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  if [[ -z "$package" ]]; then
    apt-get update -qq >/dev/null 2>&1 || true
    package=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  fi
  [[ -n "$package" ]] || { echo "install-deps.sh: cannot find the package linux-image-amd64 depends on" >&2; return 1; }
  echo "install-deps.sh: taking the guest kernel from $package into $cache" >&2
  (cd "$work" && apt-get download -qq "$package" 2>/dev/null) || { echo "install-deps.sh: apt-get download $package failed" >&2; return 1; }
  deb=$(ls "$work"/*.deb)
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" --wildcards './boot/vmlinuz-*'
  mkdir -p "$cache"
  cp "$work"/boot/vmlinuz-* "$cache/vmlinuz.new"
  # The kernel inside the bzImage is an xz stream: unpacked, it is an ELF with a PVH entry point,
  # which QEMU starts without running the bzImage's decompressor (boots take half as long).
  offset=$(LC_ALL=C grep -obUa $'\xfd7zXZ\x00' "$cache/vmlinuz.new" | head -1 | cut -d: -f1)
  [[ -n "$offset" ]] || { echo "install-deps.sh: no xz stream in $package's kernel" >&2; return 1; }
  tail -c +$((offset + 1)) "$cache/vmlinuz.new" | xz -dcq >"$cache/vmlinux.new" 2>/dev/null || true  # trailing data after the stream
  [[ $(head -c 4 "$cache/vmlinux.new" | od -An -tx1 | tr -d ' ') == 7f454c46 ]] ||
    { echo "install-deps.sh: the unpacked kernel is not an ELF file" >&2; return 1; }
  mv "$cache/vmlinuz.new" "$cache/vmlinuz"
  mv "$cache/vmlinux.new" "$cache/vmlinux"
  echo "$package" >"$cache/package"
  rm -rf "$work"
}

if [[ ${#missing[@]} -eq 0 ]]; then
  [[ $vm -eq 0 ]] || vm_kernel
  exit 0
fi

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
[[ $vm -eq 0 ]] || vm_kernel
