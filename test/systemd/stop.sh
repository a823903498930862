#!/bin/bash
# stop.sh - stop the manager started by start.sh (same TB_DIR / TESTBED_CG), kill anything left in
# its cgroup subtree, remove every cgroup it created and its state directory.
set -uo pipefail
TB_DIR=${TB_DIR:-${TMPDIR:-/tmp}/cgdev-systemd}
STATE=${TB_STATE:-$TB_DIR/state}
CGNAME=${TESTBED_CG:-cgdev-systemd}
if [ -f "$STATE/cgroup" ]; then CG=$(cat "$STATE/cgroup")
elif [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then CG=/sys/fs/cgroup/$CGNAME
else CG=/sys/fs/cgroup/unified/$CGNAME; fi

export XDG_RUNTIME_DIR="$STATE/run"
MPID=$(cat "$STATE/manager.pid" 2>/dev/null || true)
SPID=$(cat "$STATE/script.pid" 2>/dev/null || true)

if [ -n "$MPID" ] && kill -0 "$MPID" 2>/dev/null; then
    # graceful: stops every unit (scopes included), then the manager exits
    timeout 20 systemctl --user exit >/dev/null 2>&1 || kill -TERM "$MPID" 2>/dev/null
    for _ in $(seq 1 200); do kill -0 "$MPID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$MPID" 2>/dev/null && kill -KILL "$MPID" 2>/dev/null
fi
# anything still inside our subtree (only processes this testbed started)
if [ -d "$CG" ]; then
    [ -e "$CG/cgroup.kill" ] && echo 1 > "$CG/cgroup.kill" 2>/dev/null
    for _ in $(seq 1 50); do [ -z "$(find "$CG" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] && break; sleep 0.1; done
    find "$CG" -depth -type d -exec rmdir {} \; 2>/dev/null
fi
if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then kill -TERM "$SPID" 2>/dev/null; fi
[ -d "$CG" ] && { echo "WARNING: $CG still exists" >&2; exit 1; }
if [ "${KEEP_LOG:-0}" = 1 ] && [ -f "$STATE/manager.log" ]; then cp "$STATE/manager.log" "$TB_DIR/manager.last.log"; fi
rm -rf "$STATE" "$TB_DIR/env.sh"
echo "stopped; removed $CG"
