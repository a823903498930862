#!/bin/bash
# vmtest.sh - run cgdev's VM suite (package test/vmtests) in the VM test bed
# (run-in-vm.sh): Debian's kernel in pure cgroup2 mode, where the memory, pids
# and cpu limits really bite. Two boots: one without swap (every test), one
# with 256 MiB of zram swap (the tests that need swap).
#
#   test/vm/vmtest.sh [-run REGEXP]     (make vmtest; make test runs it too)
#
#   -run REGEXP   run only the matching tests (go test -run), in both boots
#
# Without qemu-system-x86_64 or cpio it says so and exits 0 (SKIPPED), as
# test/setup.sh promises; CGDEV_VM_REQUIRED=1 makes that a failure (for CI).
# It builds a static cgdev and a static test binary (CGO_ENABLED=0), boots
# them in the VM and prints each test's evidence (go test -v). Exit status:
# 0 when both boots pass, else the first failing boot's: the test binary's,
# or the harness's own (124-127, see run-in-vm.sh).
# Env: CGDEV_VM_CACHE, CGDEV_VM_TIMEOUT (seconds, default 900), GO, QEMU;
# CGDEV_VM_CGDEV=path tests that cgdev binary instead of building one.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
repo=$(cd "$here/../.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
run=''
while [ $# -gt 0 ]; do
	case $1 in
	-run) run=$2; shift 2 ;;
	*) echo "usage: $0 [-run REGEXP]" >&2; exit 2 ;;
	esac
done

missing=()
command -v "${QEMU:-qemu-system-x86_64}" >/dev/null || missing+=(qemu-system-x86)
command -v cpio >/dev/null || missing+=(cpio)
if [ ${#missing[@]} -gt 0 ]; then
	echo "vmtest: SKIPPED, the limits were NOT tested: ${missing[*]} not installed (as root: make setup, or apt-get install --no-install-recommends ${missing[*]})" >&2
	[ "${CGDEV_VM_REQUIRED:-0}" = 1 ] && exit 1
	exit 0
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/cgdev-vmtest.XXXXXX")
trap 'rm -rf "$out"' EXIT
# shellcheck source=vmlib.sh
. "$here/vmlib.sh"
start=$(vm_now)
cgdev=$(vm_build "$repo" "$out" ./test/vmtests "$out/vmtests.test")
built=$(vm_now)

# boot LABEL SWAP_MB RUN: one VM boot running the tests matching RUN.
boot() {
	local label=$1 swap=$2 filter=$3 args=(-test.v -test.count=1 -test.timeout=10m)
	[ -z "$filter" ] || args+=(-test.run "$filter")
	echo "vmtest: --- boot $label (swap ${swap} MiB): go test ${args[*]}" >&2
	local opts=(-t "${CGDEV_VM_TIMEOUT:-900}" -m 512 -f "$cgdev:/payload/cgdev"
		-e CGDEV_IN_VM=1 -e CGDEV_BIN=/payload/cgdev)
	[ "$swap" = 0 ] || opts+=(-S "$swap")
	"$here/run-in-vm.sh" "${opts[@]}" "$out/vmtests.test" "${args[@]}"
}

# Two boots: most tests want no swap (MemoryMax alone then OOM-kills, as the
# issue asks); MemoryHigh and MemorySwapMax need swap to mean anything.
swaptests='^(TestVMKernel|TestMemoryHighThrottles|TestMemorySwapMax)$'
rc=0
set +e
boot no-swap 0 "$run" || rc=$?
boot swap 256 "${run:-$swaptests}" || { r=$?; [ $rc != 0 ] || rc=$r; }
set -e
end=$(vm_now)
echo "vmtest: $([ $rc = 0 ] && echo PASS || echo FAIL) (exit $rc): build $(vm_since "$start" "$built"), VM boots and tests $(vm_since "$built" "$end")" >&2
exit $rc
