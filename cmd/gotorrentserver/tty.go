package main

import (
	"os"
	"os/signal"
	"syscall"
	"unsafe"
)

// takeTerminal makes serve the terminal's foreground process group when it
// runs on one, and returns a function that gives the terminal back.
//
// Ctrl-C signals the whole foreground group. Started by `make run`, that
// group is make's: make dies of the SIGINT (exit status 2, "*** Interrupt")
// however cleanly the daemon then stops. In its own foreground group the
// daemon alone gets Ctrl-C, stops, exits 0, and make exits 0 with it. Run
// from a shell, the daemon already leads its own group and nothing changes.
func takeTerminal() (restore func()) {
	noop := func() {}
	tty := int(os.Stdin.Fd())
	prev, err := tcgetpgrp(tty)
	if err != nil || prev != syscall.Getpgrp() {
		return noop // no terminal, or we are not its foreground job
	}
	if prev == syscall.Getpid() || syscall.Setpgid(0, 0) != nil {
		return noop // already our own group, or a session leader
	}
	// A background group changing the foreground group gets SIGTTOU.
	signal.Ignore(syscall.SIGTTOU)
	if tcsetpgrp(tty, syscall.Getpid()) != nil {
		return noop
	}
	return func() { _ = tcsetpgrp(tty, prev) }
}

func tcgetpgrp(fd int) (int, error) {
	var pgid int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&pgid))); e != 0 {
		return 0, e
	}
	return int(pgid), nil
}

func tcsetpgrp(fd, pgid int) error {
	p := int32(pgid)
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCSPGRP, uintptr(unsafe.Pointer(&p))); e != 0 {
		return e
	}
	return nil
}
