package cgroup

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// mountReadOnly reports whether the file system at path is mounted read-only.
func mountReadOnly(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Flags&unix.ST_RDONLY != 0
}

// initCgroupNSInode is the inode number of the kernel's initial cgroup
// namespace (PROC_CGROUP_INIT_INO in include/linux/proc_ns.h).
const initCgroupNSInode = 0xEFFFFFFB

// PrivateCgroupNamespace reports whether this process runs in a cgroup
// namespace of its own, as in a container with --cgroupns=private (Docker's
// default on cgroup2): its cgroup tree then starts at the container's cgroup.
func PrivateCgroupNamespace() (bool, error) {
	fi, err := os.Stat("/proc/self/ns/cgroup")
	if err != nil {
		return false, fmt.Errorf("reading this process's cgroup namespace: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false, fmt.Errorf("reading this process's cgroup namespace: no inode")
	}
	return st.Ino != initCgroupNSInode, nil
}
