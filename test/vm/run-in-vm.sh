#!/bin/bash
# run-in-vm.sh - boot a static binary as the payload of a throw-away QEMU VM
# (software emulation, Debian's cloud kernel in pure cgroup v2 mode, an
# initramfs only: no disk, no network) and exit with the payload's status.
#
#   test/vm/run-in-vm.sh [options] BINARY [ARGS...]
#
#   -f HOST[:GUEST]  add a file or directory to the initramfs (repeatable;
#                    GUEST defaults to /payload/<basename>)
#   -e KEY=VAL       environment variable for the payload (repeatable)
#   -w DIR           the payload's working directory (default /payload)
#   -C LIST          controllers to enable in the root's cgroup.subtree_control
#                    at boot, e.g. "memory pids cpu" or "all" (default: none)
#   -S MB            swap of MB MiB on a zram device (default: no swap)
#   -m MB            guest RAM (default 512)     -s N   vCPUs (default 1)
#   -t SECS          wall-clock timeout (default 600) -> exit 124
#   -k KERNEL        bzImage or ELF vmlinux to boot instead of Debian's
#   -a "ARGS"        extra kernel command line
#   -l FILE          keep the console log (kernel + init messages) in FILE
#   -v               stream the console log to stderr, boot without "quiet"
#
# The payload runs as /payload/<basename>, stdin /dev/null, stdout and stderr
# on the guest's second serial port, which is this script's stdout byte for
# byte. /bin/sh (and a few other applets) are Debian's static busybox.
# Exit status: the payload's (128+signal if it was killed); 124 timeout,
# 125 the VM or its /init failed (console tail on stderr), 126 bad usage or
# setup, 127 the payload could not be executed.
#
# Downloads (once, with `apt-get download`, nothing is installed): Debian's
# linux-image-cloud-amd64 kernel and busybox-static, cached in
# $CGDEV_VM_CACHE (default ${TMPDIR:-/tmp}/cgdev-vm-cache).
# Needs: qemu-system-x86_64 (package qemu-system-x86), cpio, go.
set -euo pipefail

die() { echo "run-in-vm: $*" >&2; exit 126; }

self=$(readlink -f "$0")
repo=$(cd "$(dirname "$self")/../.." && pwd)
cache=${CGDEV_VM_CACHE:-${TMPDIR:-/tmp}/cgdev-vm-cache}
mem=512 smp=1 timeout=600 kernel='' extra='' keeplog='' verbose=0 cwd=/payload ctrls='' swap=0
files=() envs=()
while getopts "f:e:w:C:S:m:s:t:k:a:l:vh" opt; do
	case $opt in
	f) files+=("$OPTARG") ;; e) envs+=("$OPTARG") ;; w) cwd=$OPTARG ;; C) ctrls=$OPTARG ;;
	S) swap=$OPTARG ;; m) mem=$OPTARG ;; s) smp=$OPTARG ;; t) timeout=$OPTARG ;;
	k) kernel=$OPTARG ;; a) extra=$OPTARG ;; l) keeplog=$OPTARG ;; v) verbose=1 ;;
	h) sed -n '2,/^set -e/p' "$self" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) exit 126 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || die "usage: $0 [options] BINARY [ARGS...]  (-h for help)"
bin=$1; shift
{ [ -f "$bin" ] && [ -x "$bin" ]; } || die "$bin: not an executable file"
[[ $swap =~ ^[0-9]+$ ]] || die "-S $swap: want a size in MiB"
QEMU=${QEMU:-qemu-system-x86_64}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
command -v "$QEMU" >/dev/null || die "$QEMU not found (apt-get install --no-install-recommends qemu-system-x86)"
command -v cpio >/dev/null || die "cpio not found (apt-get install cpio)"
if command -v readelf >/dev/null && readelf -lW "$bin" 2>/dev/null | grep -q 'program interpreter'; then
	die "$bin is dynamically linked; build it with CGO_ENABLED=0"
fi
mkdir -p "$cache"

# Whatever happens from here on, the cleanup runs: qemu (and the console
# tail) are stopped, temporary directories removed.
work='' tmp='' tpid='' qpid=''
cleanup() {
	[ -z "$qpid" ] || { kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; } || true
	[ -z "$tpid" ] || kill "$tpid" 2>/dev/null || true
	rm -rf ${work:+"$work"} ${tmp:+"$tmp"}
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# shellcheck source=vmlib.sh
. "$(dirname "$self")/vmlib.sh"

# --- kernel and the zram modules, from Debian's cloud kernel package
kdir=''
if [ -z "$kernel" ]; then
	kdir=$(vm_kernel_dir "$cache") || die "fetching Debian's kernel failed"
	kernel=$kdir/vmlinuz
	[ ! -s "$kdir/vmlinux" ] || kernel=$kdir/vmlinux
fi
[ -r "$kernel" ] || die "kernel $kernel not readable"
if [ "$swap" != 0 ] && { [ -z "$kdir" ] || [ ! -f "$kdir/zram.ko" ]; }; then
	die "-S needs the zram modules of Debian's kernel (not available with -k)"
fi

# --- busybox: /bin/sh for cgdev's gate and services, and a few tools
busybox=$cache/busybox
if [ ! -x "$busybox" ]; then
	tmp=$(mktemp -d "$cache/unpack.XXXXXX")
	deb=$(vm_fetch busybox-static "$tmp") || die "fetching busybox-static failed"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -O ./bin/busybox > "$tmp/busybox"
	chmod 755 "$tmp/busybox" && mv "$tmp/busybox" "$busybox"
	rm -rf "$tmp"; tmp=
fi

# --- initramfs (cpio newc, uncompressed: it boots faster than a gzipped one)
work=$(mktemp -d "${TMPDIR:-/tmp}/run-in-vm.XXXXXX")
st=$work/root
mkdir -p "$st/payload" "$st/testbed" "$st/bin" "$st/lib/modules"
(cd "$repo" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOFLAGS=-trimpath "$GO" build -ldflags='-s -w' -o "$st/init" ./test/vm/init) ||
	die "building /init (test/vm/init) failed"
cp "$busybox" "$st/bin/busybox"
for a in sh ash cat echo env kill ls ps sleep true false grep head mkdir rm sync uname; do
	ln -s busybox "$st/bin/$a"
done
base=$(basename "$bin")
cp -L "$bin" "$st/payload/$base" && chmod 755 "$st/payload/$base"
vm_stage "$st" /payload ${files[@]+"${files[@]}"} || die "copying the -f files into the guest failed"
printf '%s\0' "/payload/$base" "$@" > "$st/testbed/argv"
declare -A seen=()
for kv in ${envs[@]+"${envs[@]}"}; do seen[${kv%%=*}]=1; printf '%s\0' "$kv"; done > "$st/testbed/env"
for kv in PATH=/payload:/usr/local/bin:/usr/bin:/bin HOME=/root USER=root TMPDIR=/tmp TERM=dumb; do
	[ -n "${seen[${kv%%=*}]:-}" ] || printf '%s\0' "$kv"
done >> "$st/testbed/env"
printf '%s' "$cwd" > "$st/testbed/cwd"
read -ra cl <<< "$ctrls"
[ ${#cl[@]} = 0 ] || printf '%s\0' "${cl[@]}" > "$st/testbed/controllers"
if [ "$swap" != 0 ]; then
	for m in zsmalloc lzo-rle zram; do
		cp "$kdir/$m.ko" "$st/lib/modules/"
		printf '%s\0' "/lib/modules/$m.ko"
	done > "$st/testbed/modules"
	echo $((swap << 20)) > "$st/testbed/swap"
fi
initrd=$work/initrd.cpio
(cd "$st" && find . -mindepth 1 -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) > "$initrd"

# --- boot: ttyS0 = console -> $log, ttyS1 = the payload's output -> our stdout
log=$work/console.log
: > "$log"
cmdline="console=ttyS0 panic=-1 oops=panic cgroup_no_v1=all cryptomgr.notests"
[ "$verbose" = 1 ] || cmdline+=" quiet"
[ -z "$extra" ] || cmdline+=" $extra"
vm_boot run-in-vm TESTBED-EXIT -kernel "$kernel" -initrd "$initrd" -append "$cmdline"
