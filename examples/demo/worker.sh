#!/bin/sh
# Forks what escapes a kill of the worker's PID or process group.
sleep 100000 &                                     # a background child
setsid sh -c 'exec sleep 100001' &                 # a new session: no longer in our process group
( sh -c 'exec sleep 100002' & )                    # a double fork: reparented to init
sh -c 'trap "" TERM; while :; do sleep 1; done' &  # ignores SIGTERM
bash -c 'exec -a renamed-helper sleep 100004' &    # renamed: pgrep sleep would not find it
echo "worker: ready"
while :; do
	echo "worker: tick $(date +%T)"
	sleep 2
done
