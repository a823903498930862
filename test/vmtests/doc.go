// Package vmtests holds the tests that prove cgdev's limits bite on a kernel
// with every cgroup2 controller: memory, pids and cpu. They run only inside
// the VM test bed (make vmtest, test/vm/vmtest.sh), which boots Debian's
// kernel in pure cgroup2 mode and sets CGDEV_IN_VM=1; anywhere else they skip.
//
// The test binary doubles as the programs the tests confine (an allocator, a
// fork bomb, a busy loop): started with CGDEV_VMTEST_HELPER set, it runs that
// helper instead of the tests, so the VM needs no other static program.
package vmtests
