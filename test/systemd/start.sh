#!/bin/bash
# start.sh - start a REAL systemd user manager (systemd --user) plus its
# socket-activated user D-Bus on a host whose PID 1 is not systemd, for cgdev's
# systemd driver tests. Usually called by with-manager.sh; stop it with stop.sh
# and the same TB_DIR / TESTBED_CG. (Adapted from the team's testbed scripts.)
#
# Safe on hybrid-cgroup hosts: systemd runs in a private mount namespace in which
# /sys/fs/cgroup is a bind mount of the host's cgroup2 tree (/sys/fs/cgroup/unified),
# so it sees a pure cgroup2 system and never sees or touches a v1 hierarchy.
# It only creates cgroups below $CG2/$TESTBED_CG.
# A tmpfs on /run/systemd (with an empty system/ dir) satisfies sd_booted() in that
# namespace only; /dev/console there is the pty of `script`, which writes the
# manager's log to $STATE/manager.log.
#
# Clients: source $TB_DIR/env.sh, then systemctl --user / systemd-run --user --scope /
# go-systemd NewUserConnectionContext (user bus) or the private socket
# $XDG_RUNTIME_DIR/systemd/private.
set -euo pipefail

SELF=$(readlink -f "$0")
TB_DIR=${TB_DIR:-${TMPDIR:-/tmp}/cgdev-systemd}   # state; must be writable
STATE=${TB_STATE:-$TB_DIR/state}
CGNAME=${TESTBED_CG:-cgdev-systemd}
LOGLEVEL=${TB_LOG_LEVEL:-info}
SYSTEMD_BIN=${SYSTEMD_BIN:-/lib/systemd/systemd}

# ---- stage 2: runs inside the private mount namespace (see below) -------------
if [ "${1:-}" = "--inner" ]; then
    if [ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ]; then
        # hybrid/legacy host: hide every v1 hierarchy behind the cgroup2 tree
        mount --bind /sys/fs/cgroup/unified /sys/fs/cgroup
    fi
    [ -d /run/systemd ] || mkdir /run/systemd     # (empty dir; does not make sd_booted() true on the host)
    mount -t tmpfs -o mode=755,size=1m cgdev-testbed-run-systemd /run/systemd
    mkdir /run/systemd/system                    # sd_booted() == true, here only
    mount --bind "$(tty)" /dev/console || true   # manager log -> script -> manager.log
    echo $$ > "/sys/fs/cgroup/$CGNAME/cgroup.procs"
    echo $$ > "$STATE/manager.pid"
    exec env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMD_COLORS=0 \
        HOME="$STATE/home" XDG_RUNTIME_DIR="$STATE/run" \
        "$SYSTEMD_BIN" --user --log-target=console --log-level="$LOGLEVEL"
fi

# ---- stage 1: host side ------------------------------------------------------
[ "$(id -u)" = 0 ] || { echo "must run as root" >&2; exit 1; }
[ -x "$SYSTEMD_BIN" ] || { echo "no $SYSTEMD_BIN (apt-get install systemd dbus-user-session)" >&2; exit 1; }
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
    CG2=/sys/fs/cgroup
elif [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
    CG2=/sys/fs/cgroup/unified
else
    echo "no cgroup2 hierarchy mounted" >&2; exit 1
fi
CG="$CG2/$CGNAME"
if [ -e "$STATE/manager.pid" ] && kill -0 "$(cat "$STATE/manager.pid")" 2>/dev/null; then
    echo "already running (pid $(cat "$STATE/manager.pid"))" >&2; exit 1
fi
[ -d "$CG" ] && { echo "$CG exists; run test/systemd/stop.sh first" >&2; exit 1; }

T0=$(date +%s.%N)
mkdir -p "$TB_DIR"
rm -rf "$STATE"
mkdir -p "$STATE/home"
install -d -m 700 "$STATE/run"
mkdir "$CG"
echo "$CG" > "$STATE/cgroup"

cat > "$TB_DIR/env.sh" <<EOF
export XDG_RUNTIME_DIR=$STATE/run
export DBUS_SESSION_BUS_ADDRESS=unix:path=$STATE/run/bus
export TESTBED_SYSTEMD_CGROUP_ROOT=$CG
EOF

export SELF TB_DIR STATE CGNAME LOGLEVEL SYSTEMD_BIN
setsid script -qfec "exec unshare --mount --propagation private -- '$SELF' --inner" \
    "$STATE/manager.log" </dev/null >/dev/null 2>&1 &
echo $! > "$STATE/script.pid"

export XDG_RUNTIME_DIR="$STATE/run"
for _ in $(seq 1 600); do                 # up to 60 s
    [ -S "$XDG_RUNTIME_DIR/systemd/private" ] && break
    kill -0 "$(cat "$STATE/script.pid")" 2>/dev/null || { echo "manager died; see $STATE/manager.log" >&2; cat "$STATE/manager.log" >&2; exit 1; }
    sleep 0.1
done
# NB: `systemctl is-system-running` prints "offline" on this host (sd_booted() is false
# outside the namespace), so poll the manager's SystemState property instead.
state=
for _ in $(seq 1 600); do
    state=$(systemctl --user show -p SystemState --value 2>/dev/null || true)
    case "$state" in running|degraded) break;; esac
    sleep 0.1
done
# bring the user bus up now (it is socket-activated) and wait until the manager owns
# org.freedesktop.systemd1 on it, so NewUserConnectionContext clients don't race.
systemctl --user start dbus.service
for _ in $(seq 1 100); do
    busctl --user status org.freedesktop.systemd1 >/dev/null 2>&1 && break
    sleep 0.1
done
T1=$(date +%s.%N)
echo "systemd --user pid $(cat "$STATE/manager.pid"), state=$state, cgroup $CG, startup $(echo "$T1 - $T0" | bc) s"
echo "clients: source $TB_DIR/env.sh"
case "$state" in running|degraded) exit 0;; *) exit 1;; esac
