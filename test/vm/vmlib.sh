# vmlib.sh - sourced by the VM test beds (test/vm/run-in-vm.sh,
# test/vm-systemd/run-sd-vm.sh): Debian's cloud kernel, fetched once with
# `apt-get download` (nothing is installed) and unpacked into a cache, and
# the qemu boot both beds share.
#
#   vm_fetch PKG DIR        download package PKG into DIR; print the .deb's path
#   vm_kernel_dir CACHE     print the cached kernel directory, fetching it first
#                           when needed: vmlinuz, vmlinux (when the bzImage can
#                           be unpacked: qemu boots it directly, PVH), and the
#                           zram swap modules zsmalloc.ko, lzo-rle.ko, zram.ko
#   vm_boot NAME MARKER QEMU-ARGS...   boot, wait, exit with the guest's status
#   vm_build REPO OUT TESTPKG TESTBIN   build TESTPKG's static test binary as
#                           TESTBIN, and a static cgdev as OUT/cgdev unless
#                           $CGDEV_VM_CGDEV names one; print the cgdev to test
#   vm_now, vm_since T0 T1  a wall-clock stamp; the seconds between two ("1.5s")
#   vm_stage ROOT DIR SPEC...  copy each -f SPEC (HOST[:GUEST]; GUEST defaults to
#                           DIR/<name of HOST>) into the guest's tree ROOT
#
# The first two write their messages to stderr and return non-zero on
# failure. Each caller unpacks into a directory of its own and renames the
# result into place, so concurrent first runs never share a half-written file.

vm_fetch() {
	echo "vm: fetching $1 into $2" >&2
	if ! (cd "$2" && apt-get download -q "$1" >/dev/null 2>&1); then
		# stale package lists name a version the mirror no longer has
		{ [ "$(id -u)" = 0 ] && apt-get update -qq >/dev/null 2>&1 &&
			(cd "$2" && apt-get download -q "$1" >/dev/null 2>&1); } || {
			echo "vm: apt-get download $1 failed (run apt-get update?)" >&2
			return 1
		}
	fi
	ls -1 "$2/$1"_*.deb | sort -V | tail -1
}

# vm_unpack_vmlinux bzImage: print the ELF vmlinux inside it; fails if the
# compression is not one of lz4, xz, zstd or gzip.
vm_unpack_vmlinux() {
	local z=$1 ss po pl st dec
	ss=$(od -An -tu1 -j $((0x1f1)) -N1 "$z" | tr -d ' '); [ "$ss" != 0 ] || ss=4
	read -r po pl < <(od -An -tu4 -j $((0x248)) -N8 "$z")
	st=$(((ss + 1) * 512 + po))
	case $(od -An -tx1 -j "$st" -N4 "$z" | tr -d ' \n') in
	02214c18) dec="lz4 -dc" ;; fd377a58) dec="xz -dc" ;; 28b52ffd) dec="zstd -dcq" ;;
	1f8b08*) dec="gzip -dc"; pl=$((pl + 4)) ;;
	*) return 1 ;;
	esac
	# the kernel build appends the 4-byte uncompressed size to the payload
	head -c $((st + pl - 4)) "$z" | tail -c $((pl - 4)) | $dec
}

vm_kernel_dir() ( # a subshell: its trap removes the unpack directory on every path
	cache=$1
	pkg=$(ls -1d "$cache"/linux-image-*/ 2>/dev/null | sort -V | tail -1 || true)
	if [ -n "$pkg" ]; then
		echo "${pkg%/}"
		exit 0
	fi
	resolve() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'; }
	name=$(resolve)
	if [ -z "$name" ] && [ "$(id -u)" = 0 ]; then # a fresh machine without package lists
		echo "vm: apt-get update (to find linux-image-cloud-amd64)" >&2
		apt-get update -qq >/dev/null 2>&1 || true
		name=$(resolve)
	fi
	[ -n "$name" ] || { echo "vm: cannot resolve linux-image-cloud-amd64 (run apt-get update?)" >&2; exit 1; }
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/unpack.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	deb=$(vm_fetch "$name" "$tmp") || exit 1
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' \
		'./lib/modules/*/kernel/mm/zsmalloc.ko' './lib/modules/*/kernel/crypto/lzo-rle.ko' \
		'./lib/modules/*/kernel/drivers/block/zram/zram.ko' || exit 1
	mkdir -p "$tmp/k"
	mv "$tmp"/boot/vmlinuz-* "$tmp/k/vmlinuz"
	find "$tmp/lib" -name '*.ko' -exec mv {} "$tmp/k/" \;
	if vm_unpack_vmlinux "$tmp/k/vmlinuz" > "$tmp/k/vmlinux" 2>/dev/null &&
		[ "$(head -c4 "$tmp/k/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then :; else
		rm -f "$tmp/k/vmlinux"
	fi
	mv -T "$tmp/k" "$cache/$name" 2>/dev/null || true # another run may have won
	echo "$cache/$name"
)

# vm_boot NAME MARKER QEMU-ARGS...: boot qemu (TCG, never KVM: it hangs on
# this kind of host) with the serial console in $log and the guest's second
# serial port on stdout, plus QEMU-ARGS (kernel, command line, disks); then
# exit with the status the guest printed as "MARKER <status>" on its console:
# 124 when $timeout seconds passed, 125 when no marker came (console tail on
# stderr; NAME prefixes the messages). Uses the caller's smp, mem, timeout,
# log, keeplog, verbose and QEMU, and sets qpid and tpid (the console tail)
# for the caller's cleanup trap. qemu runs under timeout(1) in the
# background so that `wait` returns on INT, TERM and HUP; the trap then
# TERMs timeout, which forwards it to qemu.
vm_boot() {
	local name=$1 marker=$2 qrc code
	shift 2
	if [ "$verbose" = 1 ]; then
		tail -n +1 -f "$log" >&2 &
		tpid=$!
	fi
	# qboot (from qemu-system-data) boots ~0.3 s faster than SeaBIOS
	local fw=(); [ ! -r /usr/share/qemu/qboot.rom ] || fw=(-bios /usr/share/qemu/qboot.rom)
	# -cpu max gives RDRAND: with qemu64 Go's first getrandom blocks for ~1 s.
	timeout -k 5 "$timeout" "${QEMU:-qemu-system-x86_64}" -M pc ${fw[@]+"${fw[@]}"} -accel tcg -cpu max -smp "$smp" -m "$mem" \
		-nodefaults -no-user-config -display none -monitor none -no-reboot "$@" \
		-serial "file:$log" -chardev stdio,id=payload -device isa-serial,chardev=payload,index=1 \
		</dev/null &
	qpid=$!
	set +e
	wait "$qpid"
	qrc=$?
	set -e
	qpid=
	if [ -n "$tpid" ]; then sleep 0.2; kill "$tpid" 2>/dev/null || true; tpid=; fi
	[ -z "$keeplog" ] || cp "$log" "$keeplog"
	code=$(tr -d '\r' < "$log" | grep -ao "$marker [0-9]\+" | tail -1 | cut -d' ' -f2 || true)
	if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
		echo "$name: timeout after ${timeout}s; console tail:" >&2
		tail -n 30 "$log" | tr -d '\r' >&2
		exit 124
	fi
	if [ -z "$code" ]; then
		echo "$name: the VM ended without $marker (qemu status $qrc); console tail:" >&2
		[ "$verbose" = 1 ] || tail -n 40 "$log" | tr -d '\r' >&2
		exit 125
	fi
	exit "$code"
}

vm_build() {
	local cgdev=${CGDEV_VM_CGDEV:-$2/cgdev}
	if [ -z "${CGDEV_VM_CGDEV:-}" ]; then
		(cd "$1" && CGO_ENABLED=0 "$GO" build -trimpath -o "$cgdev" ./cmd/cgdev) >&2 || return 1
	fi
	(cd "$1" && CGO_ENABLED=0 "$GO" test -c -trimpath -o "$4" "$3") >&2 || return 1
	echo "$cgdev"
}

vm_now() { date +%s.%N; }
vm_since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fs", b - a }'; }

vm_stage() {
	local root=$1 dir=$2 f host guest
	shift 2
	for f in "$@"; do
		host=${f%%:*} guest=${f#*:}
		[ "$guest" = "$f" ] && guest=$dir/$(basename "$host")
		[ -e "$host" ] || { echo "-f $host: no such file" >&2; return 1; }
		mkdir -p "$root$(dirname "$guest")" && cp -rL --preserve=mode,timestamps "$host" "$root$guest" || return 1
	done
}
