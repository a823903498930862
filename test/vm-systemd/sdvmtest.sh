#!/bin/bash
# sdvmtest.sh - run cgdev's systemd VM suite (package test/sdvmtests) in the
# systemd VM test bed (run-sd-vm.sh): Debian 12 with systemd as PID 1, pure
# cgroup2, a lingering user dev with its user manager and bus, docker.
#
#   test/vm-systemd/sdvmtest.sh [-run REGEXP] [-pass MODE[,K=V...]]...
#                                          (make vmtest-systemd; make test runs it too)
#
#   -run REGEXP   run only the matching tests (go test -run), in every pass
#   -pass P       run only these passes (repeatable; default: all of them)
#
# The passes, in one boot (see guest.sh and docs/environments.md):
#   dev                           uid 1000 in a terminal-like scope, driver auto
#   dev-delegate                  uid 1000 in a Delegate=yes scope, driver auto
#   root                          root in a system service, driver auto
#   root,CGDEV_DRIVER=systemd,CGDEV_SDVM_ONLY=...   the same with --driver systemd
#                                 (by $CGDEV_DRIVER), a few tests: auto picks
#                                 systemd as root, the root pass runs them all
#   root-delegate,CGDEV_DRIVER=direct   root in a Delegate=yes scope, --driver direct
#   docker                        root with docker.service: containers, compose
#
# It builds a static cgdev and a static test binary (CGO_ENABLED=0), boots
# them in the VM and prints each test's evidence (go test -v). Exit status:
# the first failing pass's, or the harness's own (124-126, see run-sd-vm.sh).
# Without qemu it says SKIPPED and exits 0; so does a non-root user without
# a built image; CGDEV_VM_REQUIRED=1 (CI) makes both a failure.
# Env: CGDEV_SDVM_CACHE, CGDEV_VM_CACHE, CGDEV_VM_TIMEOUT (seconds, default
# 1800), GO; CGDEV_VM_CGDEV=path tests that cgdev binary instead of building one.
set -euo pipefail

here=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
repo=$(cd "$here/../.." && pwd)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
run='' passes=()
while [ $# -gt 0 ]; do
	case $1 in
	-run) run=$2; shift 2 ;;
	-pass) passes+=("$2"); shift 2 ;;
	*) echo "usage: $0 [-run REGEXP] [-pass MODE[,K=V...]]..." >&2; exit 2 ;;
	esac
done
[ ${#passes[@]} -gt 0 ] || passes=(dev dev-delegate root
	'root,CGDEV_DRIVER=systemd,CGDEV_SDVM_ONLY=^Test(Doctor|RunMemoryMaxOOM|ServiceOOMReported|StopHardCases)$'
	root-delegate,CGDEV_DRIVER=direct docker)

skip() {
	echo "vmtest-systemd: SKIPPED, cgdev was NOT tested under systemd: $*" >&2
	[ "${CGDEV_VM_REQUIRED:-0}" = 1 ] && exit 1
	exit 0
}
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86 is not installed (as root: make setup)"
if [ "$(id -u)" != 0 ] && ! ls "${CGDEV_SDVM_CACHE:-${TMPDIR:-/tmp}/cgdev-sdvm-cache}"/rootfs-*.ext4 >/dev/null 2>&1; then
	skip "building the VM's root image needs root once (as root: make vmtest-systemd)"
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/cgdev-sdvmtest.XXXXXX")
trap 'rm -rf "$out"' EXIT
# shellcheck source=../vm/vmlib.sh
. "$here/../vm/vmlib.sh"
start=$(vm_now)
cgdev=$(vm_build "$repo" "$out" ./test/sdvmtests "$out/sdvmtests.test")
"$here/run-sd-vm.sh" -B # build the image (once) before the clock of the boot starts
built=$(vm_now)

args=(-test.v -test.count=1 -test.timeout=20m)
[ -z "$run" ] || args+=(-test.run "$run")
opts=(-t "${CGDEV_VM_TIMEOUT:-1800}" -f "$cgdev:/sdvm/cgdev" -e CGDEV_BIN=/sdvm/cgdev)
for p in "${passes[@]}"; do opts+=(-u "$p"); done
echo "vmtest-systemd: passes ${passes[*]}: go test ${args[*]}" >&2
rc=0
"$here/run-sd-vm.sh" "${opts[@]}" "$out/sdvmtests.test" "${args[@]}" || rc=$?
end=$(vm_now)
echo "vmtest-systemd: $([ $rc = 0 ] && echo PASS || echo FAIL) (exit $rc): build $(vm_since "$start" "$built"), VM boot and ${#passes[@]} passes $(vm_since "$built" "$end")" >&2
exit $rc
