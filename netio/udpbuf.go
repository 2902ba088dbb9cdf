package netio

import (
	"net"

	"golang.org/x/sys/unix"
)

// socketBuffer is what the shared UDP socket asks for each way. uTP needs
// it: libtorrent's own uTP moves 2-5 MB/s on loopback with the kernel's
// default UDP buffers (208 KiB) and 55-75 MB/s with 4 MiB, because a
// burst of a window's packets overflows a small receive buffer and every
// overflow is a loss that halves the window.
const socketBuffer = 4 << 20

// SizeUDPBuffers sets pc's buffers to want bytes each way. The plain
// setsockopt is capped by net.core.rmem_max/wmem_max (often 208 KiB); the
// FORCE variants, allowed with CAP_NET_ADMIN, are not, so they go first.
// It returns what the kernel then reports.
func SizeUDPBuffers(pc *net.UDPConn, want int) (rcv, snd int) {
	raw, err := pc.SyscallConn()
	if err != nil {
		return 0, 0
	}
	raw.Control(func(fd uintptr) {
		s := int(fd)
		if unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, want) != nil {
			unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF, want)
		}
		if unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, want) != nil {
			unix.SetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUF, want)
		}
		rcv, _ = unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF)
		snd, _ = unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	return rcv, snd
}
