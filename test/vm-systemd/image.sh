# image.sh - the recipe of the systemd VM's root file system, sourced by
# run-sd-vm.sh. The SHA-256 of this file names the cached image: editing it
# rebuilds the image on the next run, nothing else does.
#
# Debian 12 (bookworm: systemd 252, docker.io 20.10, docker-compose 1.29)
# bootstrapped with mmdebstrap from the host's apt sources, plus:
#   - user dev (uid 1000, lingering: user@1000.service and its bus start at
#     boot) and user dev2 (uid 1001, not lingering: a second user whose
#     manager a test starts when it needs one), both in systemd-journal;
#   - docker installed but not started at boot (a test starts docker.service;
#     /etc/docker/daemon.json gives the flags a VM without kernel modules
#     needs: no bridge, no iptables, the vfs storage driver);
#   - sdvm.service, which unpacks the run's files from the second disk and
#     hands over to the run's own /sdvm/.guest (test/vm-systemd/guest.sh):
#     what runs, and how, travels with each run, not in the image;
#   - gettys, timers, generators and a dozen units masked: each costs
#     seconds of boot under software emulation.
# Needs root (mmdebstrap --mode=root), mmdebstrap and e2fsprogs.

SDVM_PKGS=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,procps,docker.io,docker-compose,busybox-static
SDVM_MASK="getty@tty1.service serial-getty@ttyS0.service serial-getty@ttyS1.service console-getty.service
 getty.target apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer
 e2scrub_reap.service fstrim.timer systemd-tmpfiles-clean.timer systemd-pstore.service
 systemd-firstboot.service remote-fs.target systemd-update-utmp.service systemd-update-utmp-runlevel.service
 systemd-journal-flush.service modprobe@.service dev-hugepages.mount sys-kernel-debug.mount
 sys-kernel-tracing.mount proc-sys-fs-binfmt_misc.automount systemd-modules-load.service
 systemd-random-seed.service systemd-remount-fs.service systemd-sysusers.service
 systemd-ask-password-console.path systemd-ask-password-wall.path apparmor.service"

# sdvm_overlay DIR: the files added to the bootstrapped root DIR.
sdvm_overlay() {
	local r=$1 u
	mkdir -p "$r/etc/systemd/system/multi-user.target.wants" "$r/etc/systemd/system-generators" \
		"$r/var/lib/systemd/linger" "$r/usr/local/sbin" "$r/sdvm" "$r/etc/docker"
	touch "$r/var/lib/systemd/linger/dev"
	od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$r/etc/machine-id" && echo >> "$r/etc/machine-id"
	for u in $SDVM_MASK; do ln -sf /dev/null "$r/etc/systemd/system/$u"; done
	rm -f "$r/etc/systemd/system/getty.target.wants/getty@tty1.service"
	for u in "$r"/usr/lib/systemd/system-generators/*; do # each generator costs an exec
		ln -sf /dev/null "$r/etc/systemd/system-generators/${u##*/}"
	done
	# docker and containerd start only when a test asks for them
	find "$r/etc/systemd/system" -name 'docker.*' -o -name 'containerd.service' | grep -v '/docker.service.d' | xargs -r rm -f
	cat > "$r/etc/docker/daemon.json" <<-'EOF'
	{"bridge": "none", "iptables": false, "ip6tables": false, "storage-driver": "vfs"}
	EOF
	: > "$r/etc/fstab"
	echo sdvm > "$r/etc/hostname"
	cat > "$r/etc/systemd/system/sdvm.service" <<-'EOF'
	[Unit]
	Description=sdvm: the run's payload
	After=systemd-user-sessions.service systemd-logind.service dbus.service
	Wants=dbus.service
	[Service]
	Type=oneshot
	ExecStart=/usr/local/sbin/sdvm-boot
	StandardOutput=journal+console
	EOF
	ln -sf ../sdvm.service "$r/etc/systemd/system/multi-user.target.wants/sdvm.service"
	cat > "$r/usr/local/sbin/sdvm-boot" <<-'EOF'
	#!/bin/bash
	# sdvm-boot: unpack the run's tar (the second NVMe namespace) over / and
	# run its /sdvm/.guest; if that cannot happen, say so and power off.
	for i in $(seq 200); do [ -b /dev/nvme0n2 ] && break; sleep 0.05; done
	if tar -xf /dev/nvme0n2 -C / && [ -x /sdvm/.guest ]; then
		exec /sdvm/.guest
	fi
	echo "SDVM-EXIT 125" > /dev/ttyS0
	systemctl poweroff -ff
	EOF
	chmod 755 "$r/usr/local/sbin/sdvm-boot"
}

# sdvm_build_image DIR IMAGE: bootstrap Debian into DIR, add the overlay and
# make the ext4 IMAGE of it.
sdvm_build_image() {
	mmdebstrap --variant=minbase --mode=root --format=directory \
		--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr --include="$SDVM_PKGS" \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
		--customize-hook='chroot "$1" useradd -m -u 1000 -U -G systemd-journal -s /bin/bash dev' \
		--customize-hook='chroot "$1" useradd -m -u 1001 -U -G systemd-journal -s /bin/bash dev2' \
		--customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
		bookworm "$1" ${SDVM_MIRROR:+"$SDVM_MIRROR"} || return 1
	sdvm_overlay "$1"
	# sparse, no journal: the guest writes to a throw-away overlay (snapshot=on)
	mkfs.ext4 -q -F -O ^has_journal -L sdvmroot -d "$1" "$2" 3G
}
