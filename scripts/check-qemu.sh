#!/usr/bin/env bash
# The VMM plugin in a real VMM: boots a Linux guest under QEMU (TCG: no KVM needed) whose init is
# the fake kernel (kdcom-guest-init) attached through QEMU's ivshmem-doorbell device to
# kdcom-bridge --guest ivshmem:///PATH, and runs kdcom-sim's simulated debugger against the bridge
# over a Unix socket: a 64 MiB dump with every byte checked, a reboot of the guest halfway (the
# debugger sees the new boot and goes on), then MB/s and crossings reported. Then the same, 16 MiB,
# through QEMU's ivshmem-plain device (a memory file, no doorbells). Every step has a hard
# timeout; the debugger starts when the guest says it attached, not after a fixed sleep.
# Usage: scripts/check-qemu.sh [BUILD_DIR]   (default: build; only the three programs are built)
# KDCOM_QEMU_DUMP_MIB sets the dump's size (64); KDCOM_QEMU_PLAIN_MIB the second VM's, through
# ivshmem-plain (16).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
dump_mib=${KDCOM_QEMU_DUMP_MIB:-64}
plain_mib=${KDCOM_QEMU_PLAIN_MIB:-16}
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

# One VM through one kind of ivshmem device (doorbell: kdcom-bridge is the ivshmem server QEMU
# connects to; plain: both map a memory file and poll), a dump of $2 MiB with a reboot halfway.
run_vm() {
  local mode=$1 mib=$2 guest device
  local bridge_log=$work/bridge.log console=$work/console.log debugger_log=$work/debugger.log
  rm -f "$bridge_log" "$console" "$debugger_log" "$work/qemu.log"
  if [[ $mode == doorbell ]]; then
    guest="ivshmem://$work/kd.sock"
    device=(-chardev "socket,path=$work/kd.sock,id=kd" -device ivshmem-doorbell,chardev=kd,vectors=1)
  else
    guest="ivshmem://$work/kd.mem?plain"
  fi
  timeout 600 "$build/tools/kdcom-bridge" --guest "$guest" --debugger "unix-listen://$work/debugger-$mode.sock" \
    >"$bridge_log" 2>&1 &
  pids+=($!)
  local bridge_pid=$!
  wait_for 10 "$bridge_log" "kdcom-bridge: guest" || fail "the bridge did not start ($mode)"
  # The memory file exists once the bridge runs; QEMU must be given its size.
  [[ $mode == plain ]] && device=(-object "memory-backend-file,id=kd,mem-path=$work/kd.mem,size=$(stat -c %s "$work/kd.mem"),share=on"
                                  -device ivshmem-plain,memdev=kd)

  # No -no-reboot: the guest's reboot resets the machine, and QEMU keeps the ivshmem region.
  local boot_started=$SECONDS
  timeout 300 qemu-system-x86_64 -accel tcg -M pc -m 256M -nodefaults -display none -monitor none \
    -serial "file:$console" -kernel "$cache/vmlinux" -initrd "$work/initrd.cpio" \
    -append "console=ttyS0 quiet panic=-1 kdcom_image_mib=$mib" "${device[@]}" >"$work/qemu.log" 2>&1 &
  pids+=($!)
  local qemu_pid=$!
  wait_for 60 "$console" "kdcom-guest-init: attached" || fail "the guest did not attach within 60 s ($mode)"
  echo "check-qemu: ivshmem-$mode: guest booted and attached in $((SECONDS - boot_started)) s"

  if ! timeout 240 "$build/tools/kdcom-sim" --target "unix://$work/debugger-$mode.sock" --dump "$mib" --reboot-midway \
    --faults loss=0 --no-capture >"$debugger_log" 2>&1; then
    fail "the simulated debugger failed ($mode)"
  fi
  grep -q "every byte matched" "$debugger_log" || fail "the dump did not match ($mode)"
  grep -q "the target is back after its reboot" "$debugger_log" || fail "the debugger did not see the new boot ($mode)"
  [[ $(grep -c "kdcom-guest-init: attached" "$console") -eq 2 ]] || fail "the guest did not boot twice ($mode)"
  grep -q "generation 2" "$bridge_log" || fail "the bridge did not serve the second boot, generation 2 ($mode)"

  kill "$qemu_pid" 2>/dev/null || true  # QEMU ends on SIGTERM
  if [[ $mode == doorbell ]]; then  # the server sees its VM go (a memory file says nothing)
    wait_for 10 "$bridge_log" "guest gone" || fail "the bridge did not notice the VM end"
  fi
  kill "$bridge_pid" 2>/dev/null || true  # the bridge prints its statistics as it stops
  wait_for 10 "$bridge_log" "statistics:" || fail "the bridge did not stop cleanly ($mode)"

  local rate crossings calls
  rate=$(grep -o 'dump done, [0-9.]* MB/s' "$debugger_log" | grep -o '[0-9.]* MB/s')
  crossings=$(grep -o 'crossings [0-9]*' "$bridge_log" | tail -1 | grep -o '[0-9]*')
  calls=$(grep -o 'guest calls [0-9]*' "$bridge_log" | tail -1 | grep -o '[0-9]*')
  echo "check-qemu: ivshmem-$mode: $mib MiB dumped from a QEMU guest (TCG), every byte checked, a reboot midway:" \
    "$rate, $calls guest calls, $crossings crossings"
}

run_vm doorbell "$dump_mib"
run_vm plain "$plain_mib"
echo "check-qemu: passed in $((SECONDS - started)) s"
