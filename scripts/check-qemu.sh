#!/usr/bin/env bash
# The VMM plugin in a real VMM: boots a Linux guest under QEMU (TCG: no KVM needed) whose init is
# the fake kernel (kdcom-guest-init) attached through QEMU's ivshmem-doorbell device to
# kdcom-bridge --guest ivshmem:///PATH, and runs kdcom-sim's simulated debugger against the bridge
# over a Unix socket: a 64 MiB dump with every byte checked, a reboot of the guest halfway (the
# debugger sees the new boot and goes on), then MB/s and crossings reported. Every step has a hard
# timeout; the debugger starts when the guest says it attached, not after a fixed sleep.
# Usage: scripts/check-qemu.sh [BUILD_DIR]   (default: build; only the three programs are built)
# KDCOM_QEMU_DUMP_MIB sets the dump's size (64).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
dump_mib=${KDCOM_QEMU_DUMP_MIB:-64}
cache=${KDCOM_VM_CACHE:-$HOME/.cache/kdcom-vm}
started=$SECONDS

scripts/install-deps.sh --vm
KDCOM_BUILD_TARGETS="kdcom-bridge kdcom-sim kdcom-guest-init" scripts/build.sh "$build"
for f in "$cache/vmlinux" "$build/tools/kdcom-guest-init"; do
  [[ -s "$f" ]] || { echo "check-qemu: $f is missing" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
finish() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap finish EXIT
fail() {
  echo "check-qemu: FAILED: $*" >&2
  for log in console bridge debugger qemu; do
    [[ -s "$work/$log.log" ]] && { echo "--- $log.log (end)" >&2; tail -25 "$work/$log.log" >&2; }
  done
  exit 1
}
# Waits up to $1 seconds for the file $2 to contain the text $3.
wait_for() {
  local deadline=$((SECONDS + $1))
  until [[ -f "$2" ]] && grep -q -- "$3" "$2"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# The initramfs: the static init and /dev/console, in the kernel's "newc" cpio format (written
# here: Debian's cpio package is not needed for two entries).
newc_entry() {  # NAME MODE SIZE RDEV_MAJOR RDEV_MINOR [FILE]
  local name=$1 mode=$2 size=$3 namesize=$((${#1} + 1))
  printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
    "$inode" "$mode" 0 0 1 0 "$size" 0 0 "$4" "$5" "$namesize" 0
  printf '%s\0' "$name"
  head -c $(((4 - (110 + namesize) % 4) % 4)) /dev/zero
  if [[ -n "${6:-}" ]]; then
    cat "$6"
    head -c $(((4 - size % 4) % 4)) /dev/zero
  fi
  inode=$((inode + 1))
}
inode=1
{
  newc_entry dev $((8#040755)) 0 0 0
  newc_entry dev/console $((8#020600)) 0 5 1
  newc_entry init $((8#100755)) "$(stat -c %s "$build/tools/kdcom-guest-init")" 0 0 "$build/tools/kdcom-guest-init"
  newc_entry 'TRAILER!!!' 0 0 0 0
} >"$work/initrd.cpio"

timeout 600 "$build/tools/kdcom-bridge" --guest "ivshmem://$work/kd.sock" --debugger "unix-listen://$work/debugger.sock" \
  >"$work/bridge.log" 2>&1 &
pids+=($!)
wait_for 10 "$work/bridge.log" "kdcom-bridge: guest" || fail "the bridge did not start"

# No -no-reboot: the guest's reboot resets the machine, and QEMU keeps the ivshmem region.
boot_started=$SECONDS
timeout 300 qemu-system-x86_64 -accel tcg -M pc -m 256M -nodefaults -display none -monitor none \
  -serial "file:$work/console.log" -kernel "$cache/vmlinux" -initrd "$work/initrd.cpio" \
  -append "console=ttyS0 quiet panic=-1 kdcom_image_mib=$dump_mib" \
  -chardev "socket,path=$work/kd.sock,id=kd" -device ivshmem-doorbell,chardev=kd,vectors=1 \
  >"$work/qemu.log" 2>&1 &
pids+=($!)
qemu_pid=$!
wait_for 60 "$work/console.log" "kdcom-guest-init: attached" || fail "the guest did not attach within 60 s"
echo "check-qemu: guest booted and attached in $((SECONDS - boot_started)) s"

if ! timeout 240 "$build/tools/kdcom-sim" --target "unix://$work/debugger.sock" --dump "$dump_mib" --reboot-midway \
  --faults loss=0 --no-capture >"$work/debugger.log" 2>&1; then
  fail "the simulated debugger failed"
fi
grep -q "every byte matched" "$work/debugger.log" || fail "the dump did not match"
grep -q "the target is back after its reboot" "$work/debugger.log" || fail "the debugger did not see the new boot"
[[ $(grep -c "kdcom-guest-init: attached" "$work/console.log") -eq 2 ]] || fail "the guest did not boot twice"
grep -q "generation 2" "$work/bridge.log" || fail "the bridge did not serve the second boot (generation 2)"

kill "$qemu_pid" 2>/dev/null || true   # QEMU ends on SIGTERM; the bridge sees its VM go
wait_for 10 "$work/bridge.log" "guest gone" || fail "the bridge did not notice the VM end"
kill "${pids[0]}" 2>/dev/null || true  # the bridge prints its statistics as it stops
wait_for 10 "$work/bridge.log" "statistics:" || fail "the bridge did not stop cleanly"

rate=$(grep -o 'dump done, [0-9.]* MB/s' "$work/debugger.log" | grep -o '[0-9.]* MB/s')
crossings=$(grep -o 'crossings [0-9]*' "$work/bridge.log" | tail -1 | grep -o '[0-9]*')
calls=$(grep -o 'guest calls [0-9]*' "$work/bridge.log" | tail -1 | grep -o '[0-9]*')
echo "check-qemu: $dump_mib MiB dumped from a QEMU guest (TCG) through ivshmem, every byte checked, a reboot midway: $rate," \
  "$calls guest calls, $crossings crossings; $((SECONDS - started)) s in all"
