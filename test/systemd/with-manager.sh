#!/bin/bash
# with-manager.sh CMD [ARGS...] - run CMD where a systemd user manager answers,
# so that cgdev's systemd driver tests run instead of skipping.
#
#  - A user manager is already reachable (a developer's laptop, a CI image
#    booted with systemd): CMD runs as is.
#  - Otherwise, as root with /lib/systemd/systemd installed and a cgroup2 tree:
#    a private manager is started with start.sh (its own TESTBED_CG and TB_DIR,
#    so concurrent runs never share one), its environment (XDG_RUNTIME_DIR,
#    DBUS_SESSION_BUS_ADDRESS) is exported, CMD runs, and the manager is stopped
#    on every exit path (trap), even when CMD fails or this script is signalled.
#  - Otherwise it says why and runs CMD without a manager (the systemd tests
#    then skip with that reason).
#
# The exit status is CMD's. Nothing is installed: the packages are
# systemd, dbus and dbus-user-session (apt-get install them in CI).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

note() { echo "with-manager: $*" >&2; }

user_manager_reachable() {
    command -v systemctl >/dev/null 2>&1 || return 1
    [ -n "${XDG_RUNTIME_DIR:-}" ] || [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ] || return 1
    timeout 5 systemctl --user show -p Version --value >/dev/null 2>&1
}

# why_not prints why a private manager cannot be started here, or nothing.
why_not() {
    local bin=${SYSTEMD_BIN:-/lib/systemd/systemd}
    if [ "$(id -u)" != 0 ]; then echo "not root (a private manager needs mount namespaces and cgroup writes)"; return; fi
    if [ ! -x "$bin" ]; then echo "$bin does not exist (apt-get install systemd dbus dbus-user-session)"; return; fi
    for tool in unshare script systemctl busctl; do
        command -v "$tool" >/dev/null 2>&1 || { echo "$tool is not installed"; return; }
    done
    if [ "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" != cgroup2fs ] &&
        [ "$(stat -f -c %T /sys/fs/cgroup/unified 2>/dev/null)" != cgroup2fs ]; then
        echo "no cgroup2 hierarchy is mounted"
    fi
}

if user_manager_reachable; then
    note "using the reachable systemd user manager"
    exec "$@"
fi
reason=$(why_not)
if [ -n "$reason" ]; then
    note "no systemd user manager reachable and none can be started: $reason; running without one (systemd tests will skip)"
    exec "$@"
fi

export TESTBED_CG="cgdev-testbed-$$-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
export TB_DIR
TB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cgdev-systemd.XXXXXX") || exit 1

child=
stop_manager() {
    trap - EXIT INT TERM HUP
    "$HERE/stop.sh" >/dev/null || note "stopping the manager failed (TB_DIR=$TB_DIR TESTBED_CG=$TESTBED_CG)"
    rm -rf "$TB_DIR"
}
# on_signal passes sig to CMD, waits for it, stops the manager, exits 128+n.
on_signal() {
    local sig=$1 code=$2
    if [ -n "$child" ]; then
        kill -s "$sig" "$child" 2>/dev/null
        wait "$child" 2>/dev/null
    fi
    stop_manager
    exit "$code"
}
trap stop_manager EXIT
trap 'on_signal INT 130' INT
trap 'on_signal TERM 143' TERM
trap 'on_signal HUP 129' HUP

if ! "$HERE/start.sh" >"$TB_DIR/start.log" 2>&1; then
    note "starting a private systemd user manager failed:"
    cat "$TB_DIR/start.log" >&2
    exit 1
fi
note "$(head -n1 "$TB_DIR/start.log")"
# shellcheck disable=SC1091
. "$TB_DIR/env.sh"

# CMD runs in the background (stdin kept) so that the traps above can act
# while it runs; wait returns CMD's status.
"$@" <&0 &
child=$!
wait "$child"
exit $?
