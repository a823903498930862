package cgroup

// StartThenMove exposes the start-at-gate-then-move path, which this kernel
// (with clone3 CLONE_INTO_CGROUP) never takes by itself, to the tests.
var StartThenMove = startThenMove
