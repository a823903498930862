#!/bin/sh
# make demo: start the demo project, look at it, stop it, and show that no
# process of it survives. Usage: examples/demo/run.sh PATH-TO-CGDEV
set -eu
cgdev=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$(dirname "$0")"
# Bold only on a terminal, and never with NO_COLOR (as cgdev itself does).
bold='' off=''
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ] && [ "${TERM:-}" != dumb ]; then bold='\033[1m' off='\033[0m'; fi
step() { printf '\n%b$ cgdev %s%b\n' "$bold" "$*" "$off"; }

step start;  "$cgdev" start
step status; "$cgdev" status
step ps;     "$cgdev" ps
project=$("$cgdev" status --json | sed -n 's/^  "project": "\(.*\)",$/\1/p')
marked() { grep -lzx "CGDEV_PROJECT=$project" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true; }
echo "\nprocesses carrying CGDEV_PROJECT=$project: $(marked | wc -l)"

step stop;   "$cgdev" stop
left=$(marked)
if [ -n "$left" ]; then
	echo "\nSURVIVORS: $left"
	exit 1
fi
echo "\nprocesses carrying CGDEV_PROJECT=$project after stop: 0 — nothing survived"
