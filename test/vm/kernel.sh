# kernel.sh - sourced by the VM test beds (test/vm/run-in-vm.sh,
# test/vm-systemd/run-sd-vm.sh): Debian's cloud kernel, fetched once with
# `apt-get download` (nothing is installed) and unpacked into a cache.
#
#   vm_fetch PKG DIR        download package PKG into DIR; print the .deb's path
#   vm_kernel_dir CACHE     print the cached kernel directory, fetching it first
#                           when needed: vmlinuz, vmlinux (when the bzImage can
#                           be unpacked: qemu boots it directly, PVH), and the
#                           zram swap modules zsmalloc.ko, lzo-rle.ko, zram.ko
#
# Both write their messages to stderr and return non-zero on failure. Each
# caller unpacks into a directory of its own and renames the result into
# place, so concurrent first runs never share a half-written file.

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
