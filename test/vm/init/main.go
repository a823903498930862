//go:build linux

// Command init is PID 1 of cgdev's VM test bed (test/vm/run-in-vm.sh): a
// static program (CGO_ENABLED=0) that the harness packs as /init into an
// initramfs booted by Debian's kernel under qemu, with cgroup_no_v1=all.
//
// It mounts the API filesystems and cgroup2 at /sys/fs/cgroup, optionally
// loads kernel modules and puts swap on a zram device, runs the payload the
// harness described in /testbed with stdout and stderr on /dev/ttyS1 (raw),
// reaps every orphan, prints "TESTBED-EXIT <status>" on the console and
// powers the VM off. It is never useful outside that VM and refuses to run
// as anything but PID 1.
//
// The harness describes the payload in /testbed:
//
//	argv         NUL-separated argv (argv[0] is an absolute path)
//	env          NUL-separated KEY=VALUE environment
//	cwd          working directory
//	controllers  NUL-separated controllers to enable in the root's subtree_control
//	modules      NUL-separated kernel module paths, loaded in order
//	swap         size of a zram swap device in bytes (needs zram among modules)
package main

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Exit statuses of the harness, besides the payload's own.
const (
	exitVMFailure = 125 // the test bed itself failed
	exitNoPayload = 127 // the payload could not be executed
)

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "testbed-init: must run as PID 1 inside the test VM")
		os.Exit(2)
	}
	mountAll()
	writeEtc()
	loopbackUp()
	logf("kernel %s, cgroup2 controllers: %s", release(), readTrim("/sys/fs/cgroup/cgroup.controllers"))
	for _, m := range readList("/testbed/modules") {
		must("loading module "+m, loadModule(m))
	}
	if s := readTrim("/testbed/swap"); s != "" {
		size, err := strconv.ParseInt(s, 10, 64)
		must("parsing /testbed/swap", err)
		must("zram swap", zramSwap(size))
		logf("swap: %d MiB on /dev/zram0", size>>20)
	}
	enableControllers(readList("/testbed/controllers"))
	finish(runPayload())
}

// logf writes to the console, prefixed with the kernel's uptime.
func logf(format string, a ...any) {
	up, _, _ := strings.Cut(readTrim("/proc/uptime"), " ")
	fmt.Fprintf(os.Stdout, "testbed-init[%s]: %s\n", up, fmt.Sprintf(format, a...))
}

func must(what string, err error) {
	if err != nil {
		logf("FATAL: %s: %v", what, err)
		finish(exitVMFailure)
	}
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// readList reads a NUL-separated list; a missing file is an empty list.
func readList(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func mountAll() {
	const nosuid, nodev, noexec = unix.MS_NOSUID, unix.MS_NODEV, unix.MS_NOEXEC
	for _, m := range []struct {
		src, dst, fstype string
		flags            uintptr
		data             string
	}{
		{"proc", "/proc", "proc", nosuid | nodev | noexec, ""},
		{"sysfs", "/sys", "sysfs", nosuid | nodev | noexec, ""},
		{"devtmpfs", "/dev", "devtmpfs", nosuid, "mode=0755"},
		{"devpts", "/dev/pts", "devpts", nosuid | noexec, "gid=5,mode=620,ptmxmode=666"},
		{"tmpfs", "/dev/shm", "tmpfs", nosuid | nodev, "mode=1777"},
		{"tmpfs", "/run", "tmpfs", nosuid | nodev, "mode=0755"},
		{"tmpfs", "/tmp", "tmpfs", nosuid | nodev, "mode=1777"},
		// Pure cgroup v2 (the kernel runs with cgroup_no_v1=all), mounted as systemd does.
		{"cgroup2", "/sys/fs/cgroup", "cgroup2", nosuid | nodev | noexec, "nsdelegate,memory_recursiveprot"},
	} {
		os.MkdirAll(m.dst, 0o755)
		must("mount "+m.dst, unix.Mount(m.src, m.dst, m.fstype, m.flags, m.data))
	}
	for _, l := range [][2]string{{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"}} {
		os.Symlink(l[0], l[1])
	}
}

// writeEtc creates the few files programs expect, unless the initramfs has them.
func writeEtc() {
	os.MkdirAll("/etc", 0o755)
	os.MkdirAll("/root", 0o700)
	for name, body := range map[string]string{
		"/etc/passwd":   "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"/etc/group":    "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n",
		"/etc/hosts":    "127.0.0.1 localhost testbed\n::1 localhost ip6-localhost\n",
		"/etc/hostname": "testbed\n",
	} {
		if _, err := os.Stat(name); err != nil {
			os.WriteFile(name, []byte(body), 0o644)
		}
	}
	unix.Sethostname([]byte("testbed"))
}

func loopbackUp() {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return
	}
	ifr.SetUint16(unix.IFF_UP | unix.IFF_LOOPBACK | unix.IFF_RUNNING)
	unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

func release() string {
	var uts unix.Utsname
	unix.Uname(&uts)
	return unix.ByteSliceToString(uts.Release[:])
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && err != unix.EEXIST {
		return err
	}
	return nil
}

// zramSwap turns /dev/zram0 into size bytes of swap: the kernel's zram module
// compresses swapped pages into RAM, which is enough to give the memory
// controller a swap device to account (memory.swap.current, memory.swap.max).
func zramSwap(size int64) error {
	if err := os.WriteFile("/sys/block/zram0/disksize", []byte(strconv.FormatInt(size, 10)), 0); err != nil {
		return err
	}
	dev := "/dev/zram0"
	for i := 0; i < 100; i++ { // devtmpfs creates the node asynchronously
		if _, err := os.Stat(dev); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := mkswap(dev, size); err != nil {
		return err
	}
	p, err := unix.BytePtrFromString(dev)
	if err != nil {
		return err
	}
	if _, _, e := unix.Syscall(unix.SYS_SWAPON, uintptr(unsafe.Pointer(p)), 0, 0); e != 0 {
		return fmt.Errorf("swapon %s: %w", dev, e)
	}
	return nil
}

// mkswap writes a version-1 swap header (what mkswap(8) writes) to dev.
func mkswap(dev string, size int64) error {
	page := os.Getpagesize()
	hdr := make([]byte, page)
	binary.LittleEndian.PutUint32(hdr[1024:], 1)                          // version
	binary.LittleEndian.PutUint32(hdr[1028:], uint32(size/int64(page)-1)) // last_page
	copy(hdr[page-10:], "SWAPSPACE2")
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func enableControllers(want []string) {
	if len(want) == 0 {
		return
	}
	if len(want) == 1 && want[0] == "all" {
		want = strings.Fields(readTrim("/sys/fs/cgroup/cgroup.controllers"))
	}
	for _, c := range want {
		if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+"+strings.TrimPrefix(c, "+")), 0); err != nil {
			logf("enabling controller %s: %v", c, err)
		}
	}
	logf("root cgroup.subtree_control: %s", readTrim("/sys/fs/cgroup/cgroup.subtree_control"))
}

// payloadOut is the payload's stdout and stderr, drained before power-off.
var payloadOut *os.File

// runPayload starts the payload, reaps every process until it exits, kills
// and reaps what it left behind, and returns its status (128+signal if killed).
func runPayload() int {
	argv := readList("/testbed/argv")
	if len(argv) == 0 {
		logf("FATAL: /testbed/argv missing")
		return exitVMFailure
	}
	cwd := readTrim("/testbed/cwd")
	if cwd == "" {
		cwd = "/"
	}
	os.MkdirAll(cwd, 0o755)
	out, err := os.OpenFile("/dev/ttyS1", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		logf("no /dev/ttyS1 (%v); payload output goes to the console", err)
		out = os.Stdout
	} else {
		makeRaw(out)
		payloadOut = out
	}
	null, err := os.OpenFile("/dev/null", os.O_RDWR, 0)
	must("opening /dev/null", err)

	logf("exec %q (cwd %s)", argv, cwd)
	p, err := os.StartProcess(argv[0], argv, &os.ProcAttr{
		Dir:   cwd,
		Env:   readList("/testbed/env"),
		Files: []*os.File{null, out, out},
		Sys:   &unix.SysProcAttr{Setsid: true},
	})
	if err != nil {
		logf("FATAL: starting the payload: %v", err)
		if dynamic(argv[0]) {
			logf("hint: %s is dynamically linked; build it with CGO_ENABLED=0", argv[0])
		}
		return exitNoPayload
	}
	ws := reapUntil(p.Pid)
	code := ws.ExitStatus()
	if ws.Signaled() {
		code = 128 + int(ws.Signal())
		logf("payload killed by signal %d (%v)", ws.Signal(), ws.Signal())
	}
	if n := killLeftovers(); n > 0 {
		logf("killed %d leftover process(es)", n)
	}
	logf("payload exit status %d", code)
	return code
}

// reapUntil waits for any child (PID 1 inherits every orphan) until pid exits.
func reapUntil(pid int) unix.WaitStatus {
	for {
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			logf("FATAL: wait4: %v", err)
			finish(exitVMFailure)
		}
		if wpid == pid {
			return ws
		}
	}
}

// killLeftovers SIGKILLs every other process and reaps them (for up to 2 s).
func killLeftovers() int {
	if unix.Kill(-1, unix.SIGKILL) != nil {
		return 0
	}
	n := 0
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		wpid, err := unix.Wait4(-1, nil, unix.WNOHANG, nil)
		if err == unix.ECHILD {
			break
		}
		if wpid > 0 {
			n++
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return n
}

func dynamic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

// makeRaw puts a serial port in raw mode, so that the payload's bytes reach the
// host unchanged (no \n -> \r\n, no echo, no signals from the line).
func makeRaw(f *os.File) {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8 | unix.CLOCAL
	unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// drain waits until a serial port has sent everything (tcdrain).
func drain(f *os.File) { unix.IoctlSetInt(int(f.Fd()), unix.TCSBRK, 1) }

// finish flushes the serial ports, prints the exit marker the harness looks
// for, and powers off. It never returns.
func finish(code int) {
	if payloadOut != nil {
		drain(payloadOut)
	}
	unix.Sync()
	fmt.Fprintf(os.Stdout, "\nTESTBED-EXIT %d\n", code)
	drain(os.Stdout)
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}
