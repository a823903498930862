#!/bin/bash
# run-sd-vm.sh - boot a throw-away qemu VM whose PID 1 is real systemd
# (Debian 12, systemd 252, pure cgroup2) with a lingering user dev (uid 1000:
# user@1000.service and its bus run), run PAYLOAD in it once per pass, and
# exit with the first failing pass's status.
#
#   test/vm-systemd/run-sd-vm.sh [options] PAYLOAD [ARGS...]
#
#   -u PASS   a pass: MODE[,KEY=VAL...] (repeatable, run in order; default dev).
#             MODE: dev, dev-delegate, root, root-delegate or docker (see
#             guest.sh); the KEY=VALs are that pass's environment
#   -f HOST[:GUEST]  add a file or directory (GUEST defaults to
#             /sdvm/<basename>; the payload runs in /sdvm, writable by dev)
#   -e KEY=VAL       environment variable for every pass (repeatable)
#   -m MB     guest RAM (default 2048)     -s N   vCPUs (default 1)
#   -t SECS   wall-clock timeout (default 900) -> exit 124
#   -a "ARGS" extra kernel command line
#   -l FILE   keep the console log (kernel + systemd) in FILE
#   -v        stream the console log to stderr
#   -B        build the cached root image if it is missing, and exit
#
# The payload's output (all passes, each framed by "sdvm: --- pass N" lines)
# arrives on this script's stdout through the guest's second serial port.
# Exit status: the first failing pass's; 124 timeout; 125 the VM failed
# (console tail on stderr); 126 bad usage or setup.
#
# How: Debian's cloud kernel (shared with test/vm: vmlib.sh, cached in
# $CGDEV_VM_CACHE) boots under qemu (TCG, PVH, no initramfs: nvme and ext4 are
# built in, virtio is not) from an ext4 root image on an emulated NVMe disk
# opened with snapshot=on, so every run starts pristine; the run's files
# (payload, guest.sh as /sdvm/.guest, -f files) travel as a tar on a second
# NVMe namespace. The image comes from image.sh and is cached in
# $CGDEV_SDVM_CACHE (default ${TMPDIR:-/tmp}/cgdev-sdvm-cache) under the hash of
# that recipe; building it needs root, mmdebstrap and e2fsprogs (make setup),
# takes about a minute, and happens under a lock, so concurrent first runs
# build it once. Needs qemu-system-x86_64 (qemu-system-x86).
set -euo pipefail

die() { echo "run-sd-vm: $*" >&2; exit 126; }

self=$(readlink -f "$0")
here=$(dirname "$self")
cache=${CGDEV_SDVM_CACHE:-${TMPDIR:-/tmp}/cgdev-sdvm-cache}
kcache=${CGDEV_VM_CACHE:-${TMPDIR:-/tmp}/cgdev-vm-cache}
mem=2048 smp=1 timeout=900 extra='' keeplog='' verbose=0 buildonly=0
passes=() files=() envs=()
while getopts "u:f:e:m:s:t:a:l:vBh" opt; do
	case $opt in
	u) passes+=("$OPTARG") ;; f) files+=("$OPTARG") ;; e) envs+=("$OPTARG") ;;
	m) mem=$OPTARG ;; s) smp=$OPTARG ;; t) timeout=$OPTARG ;; a) extra=$OPTARG ;;
	l) keeplog=$OPTARG ;; v) verbose=1 ;; B) buildonly=1 ;;
	h) sed -n '2,/^set -e/p' "$self" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) exit 126 ;;
	esac
done
shift $((OPTIND - 1))
[ ${#passes[@]} -gt 0 ] || passes=(dev)
for p in "${passes[@]}"; do
	case ${p%%,*} in dev | dev-delegate | root | root-delegate | docker) ;;
	*) die "-u $p: the mode is one of dev, dev-delegate, root, root-delegate, docker" ;;
	esac
done
if [ "$buildonly" = 0 ]; then
	[ $# -ge 1 ] || die "usage: $0 [options] PAYLOAD [ARGS...]  (-h for help)"
	payload=$1; shift
	[ -f "$payload" ] && [ -x "$payload" ] || die "$payload: not an executable file"
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (make setup, or apt-get install --no-install-recommends qemu-system-x86)"
mkdir -p "$cache"

work='' tpid='' qpid=''
cleanup() {
	[ -z "$qpid" ] || { kill "$qpid" 2>/dev/null; wait "$qpid" 2>/dev/null; } || true
	[ -z "$tpid" ] || kill "$tpid" 2>/dev/null || true
	rm -rf ${work:+"$work"}
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# shellcheck source=../vm/vmlib.sh
. "$here/../vm/vmlib.sh"
kdir=$(vm_kernel_dir "$kcache") || die "fetching Debian's kernel failed"
kernel=$kdir/vmlinux
[ -s "$kernel" ] || kernel=$kdir/vmlinuz

# ---------------------------------------------------------------- root image
# shellcheck source=image.sh
. "$here/image.sh"
rootimg=$cache/rootfs-$(sha256sum < "$here/image.sh" | cut -c1-16).ext4

# build_image: build $rootimg unless present, holding the cache's lock so that
# concurrent first runs build it once; older images are removed (a run still
# booting one keeps its open file).
build_image() {
	exec 9> "$cache/.build.lock"
	flock 9
	if [ ! -s "$rootimg" ]; then
		[ "$(id -u)" = 0 ] || die "building the root image needs root (mmdebstrap --mode=root); run make setup and this once as root"
		command -v mmdebstrap >/dev/null || die "mmdebstrap not found (make setup, or apt-get install mmdebstrap)"
		command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 not found (make setup, or apt-get install e2fsprogs)"
		echo "run-sd-vm: building the root image ($SDVM_PKGS) into $rootimg" >&2
		local t0 tmp
		t0=$(date +%s)
		tmp=$(mktemp -d "$cache/build.XXXXXX")
		if ! sdvm_build_image "$tmp/root" "$tmp/root.ext4" > "$tmp/build.log" 2>&1; then
			tail -n 30 "$tmp/build.log" >&2
			rm -rf "$tmp"
			die "building the root image failed"
		fi
		mv "$tmp/root.ext4" "$rootimg"
		rm -rf "$tmp"
		find "$cache" -maxdepth 1 -name 'rootfs-*.ext4' ! -path "$rootimg" -delete
		echo "run-sd-vm: root image built in $(($(date +%s) - t0))s ($(du -h "$rootimg" | cut -f1) used)" >&2
	fi
	exec 9>&-
}
[ -s "$rootimg" ] || build_image
[ "$buildonly" = 0 ] || exit 0

# ---------------------------------------------------------------- the run's tar
work=$(mktemp -d "${TMPDIR:-/tmp}/run-sd-vm.XXXXXX")
st=$work/st
mkdir -p "$st/sdvm"
base=$(basename "$payload")
cp -L "$payload" "$st/sdvm/$base" && chmod 755 "$st/sdvm/$base"
cp "$here/guest.sh" "$st/sdvm/.guest" && chmod 755 "$st/sdvm/.guest"
vm_stage "$st" /sdvm ${files[@]+"${files[@]}"} || die "copying the -f files into the guest failed"
printf '%s\0' "/sdvm/$base" "$@" > "$st/sdvm/.argv"
for kv in ${envs[@]+"${envs[@]}"}; do printf '%s\0' "$kv"; done > "$st/sdvm/.env"
for p in "${passes[@]}"; do echo "${p//,/ }"; done > "$st/sdvm/.passes"
# a tar is a whole number of 512-byte blocks: the guest reads it as a disk
tar -C "$st" -cf "$work/run.tar" --owner=0 --group=0 sdvm

# ---------------------------------------------------------------- boot
log=$work/console.log
: > "$log"
cmdline="console=ttyS0 panic=-1 root=/dev/nvme0n1 rootfstype=ext4 rw rootwait apparmor=0"
cmdline+=" systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all cryptomgr.notests"
[ "$verbose" = 1 ] || cmdline+=" quiet systemd.show_status=error"
[ -z "$extra" ] || cmdline+=" $extra"
vm_boot run-sd-vm SDVM-EXIT -kernel "$kernel" -append "$cmdline" -device nvme,id=nvme0,serial=sdvm \
	-drive if=none,id=root,file="$rootimg",format=raw,snapshot=on -device nvme-ns,drive=root,bus=nvme0,nsid=1 \
	-drive if=none,id=run,file="$work/run.tar",format=raw,readonly=on -device nvme-ns,drive=run,bus=nvme0,nsid=2
