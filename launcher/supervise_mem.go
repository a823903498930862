package launcher

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// releaseCode asks the kernel to drop from this process's resident set the
// pages of its own executable (code, read-only data) it mapped while
// starting or serving a request (MADV_PAGEOUT, Linux 5.4). They are clean
// file pages: they stay in the page cache, shared with every other cgdev,
// and come back on the next touch by a minor fault. What stays resident is
// what the idle supervisor uses: a blocked wait per service. Without the
// advice, the kernel's fault-around leaves most of the 5 MiB of code and
// 6 MiB of data mapped after a start, which an idle supervisor never reads.
//
// The kernel leaves alone pages that another process maps too, such as the
// `cgdev start` still reading the last reply: so it is done releaseAfter
// after each request.
func releaseCode() {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// start-end perms offset dev inode path; only read-only mappings of
		// the executable (writable ones hold its variables).
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		from, to, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(from, 16, 64)
		end, err2 := strconv.ParseUint(to, 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		madvise(uintptr(start), uintptr(end-start), unix.MADV_PAGEOUT)
	}
}

const releaseAfter = 2 * time.Second

func madvise(addr, length uintptr, advice int) {
	unix.Syscall(unix.SYS_MADVISE, addr, length, uintptr(advice))
}
