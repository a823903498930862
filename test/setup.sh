#!/bin/bash
# setup.sh - install the Debian packages cgdev's test beds need:
#   systemd dbus dbus-user-session   a real systemd user manager (test/systemd)
#   qemu-system-x86 cpio             the pure-cgroup2 VM (test/vm)
#   mmdebstrap e2fsprogs             the systemd VM's root image (test/vm-systemd)
#   bash-completion zsh fish         the completion scripts, loaded in each shell (test/e2e)
# As root, missing packages are installed with apt-get; otherwise the script
# says what is missing and the suites that need it skip with that reason.
set -euo pipefail
need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
for p in systemd dbus dbus-user-session qemu-system-x86 cpio mmdebstrap e2fsprogs bash-completion zsh fish; do
	have "$p" || need+=("$p")
done
if [ ${#need[@]} -eq 0 ]; then
	echo "setup: test packages present"
	exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
	echo "setup: missing ${need[*]} (install them as root to run every suite; the suites that need them will skip)"
	exit 0
fi
echo "setup: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "setup: installed ${need[*]}"
