#!/bin/bash
# guest.sh - runs inside the systemd VM as /sdvm/.guest, started by the
# image's sdvm.service (root, system.slice/sdvm.service) once the run's files
# are unpacked. It travels with each run (run-sd-vm.sh packs it), so changing
# how payloads run never rebuilds the image.
#
# It runs the payload (/sdvm/.argv, NUL-separated) once per line of
# /sdvm/.passes ("MODE [KEY=VAL...]"), with /sdvm/.env and the pass's
# variables, output on the second serial port, and prints the status of the
# first failing pass (else 0) as "SDVM-EXIT <status>" on the console before
# powering off. MODE is where the payload runs:
#   dev            uid 1000 in a transient scope of its user manager
#                  (user@1000.service/app.slice/sdvm-N.scope), as a shell in
#                  a desktop terminal runs
#   dev-delegate   the same scope with Delegate=yes: the subtree is dev's
#   root           root in the system service sdvm.service, as a CI job does
#   root-delegate  root in a transient system scope with Delegate=yes
#   docker         root, after docker.service started and the image
#                  local/busybox was imported from the VM's busybox
# Each pass sees CGDEV_SDVM_PASS=MODE; the user's manager and bus are up
# before any pass starts.
out=/dev/ttyS1
stty -F $out raw -echo 2>/dev/null
say() { echo "sdvm: $*" > $out; }
finish() {
	stty -F $out raw -echo 2>/dev/null # tcsetattr(TCSADRAIN): wait for the output to leave
	echo "SDVM-EXIT $1" > /dev/ttyS0
	sleep 0.1
	systemctl poweroff -ff
}
up() { cut -d' ' -f1 /proc/uptime; }

mapfile -d '' argv < /sdvm/.argv
mapfile -d '' envv < /sdvm/.env
mapfile -t passes < /sdvm/.passes
chown -R dev:dev /sdvm
for i in $(seq 1200); do
	[ -S /run/user/1000/bus ] && systemctl -q is-active user@1000.service && break
	sleep 0.05
done
say "booted; dev's user manager up at $(up)s of uptime"
path=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin
uenv=(HOME=/home/dev USER=dev LOGNAME=dev SHELL=/bin/bash PATH=$path
	XDG_RUNTIME_DIR=/run/user/1000 DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus)
renv=(HOME=/root USER=root LOGNAME=root SHELL=/bin/bash PATH=$path)

# start_docker: docker.service up, local/busybox imported (a root of busybox
# and its applets: no registry is reachable from the VM).
start_docker() {
	systemctl start docker.service || return 1
	local bb=/tmp/sdvm-busybox a
	mkdir -p $bb/bin $bb/tmp && cp /bin/busybox $bb/bin/
	for a in sh cat echo env grep kill ls mkdir ps rm sleep true false head id setsid wc printf; do ln -sf busybox $bb/bin/$a; done
	tar -C $bb -cf $bb.tar . && docker import $bb.tar local/busybox > /dev/null
}

rc=0 n=0
cd /sdvm
for p in "${passes[@]}"; do
	n=$((n + 1))
	read -ra pv <<< "$p"
	mode=${pv[0]} penv=("${pv[@]:1}" CGDEV_SDVM_PASS=$mode)
	say "--- pass $n: $mode ${pv[*]:1} (uptime $(up)s)"
	start=$(date +%s.%N)
	case $mode in
	dev | dev-delegate)
		deleg=(); [ "$mode" = dev ] || deleg=(-p Delegate=yes)
		runuser -u dev -- env -i "${uenv[@]}" "${envv[@]}" "${penv[@]}" systemd-run --user --scope --quiet \
			--unit="sdvm-$n" --slice=app.slice "${deleg[@]}" "${argv[@]}" ;;
	root) env -i "${renv[@]}" "${envv[@]}" "${penv[@]}" "${argv[@]}" ;;
	root-delegate)
		env -i "${renv[@]}" "${envv[@]}" "${penv[@]}" systemd-run --scope --quiet \
			--unit="sdvm-$n" -p Delegate=yes "${argv[@]}" ;;
	docker)
		if start_docker > $out 2>&1; then
			say "docker up at $(up)s of uptime"
			env -i "${renv[@]}" "${envv[@]}" "${penv[@]}" "${argv[@]}"
		else
			say "docker did not start:"; journalctl -q --no-pager -u docker -u containerd | tail -n 20
			false
		fi ;;
	*) say "unknown pass mode $mode"; false ;;
	esac > $out 2>&1 < /dev/null
	prc=$?
	say "--- pass $n: $mode exit $prc after $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
	[ "$rc" != 0 ] || rc=$prc
done
finish "$rc"
