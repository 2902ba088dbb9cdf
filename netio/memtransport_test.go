package netio

import (
	"errors"
	"net"
	"sync"
)

// memTransport is a transport without a socket: received bytes are what a
// test feeds, Flush and Do only record the task, which the test then runs
// as the loop would, and Writev records its iovecs.
type memTransport struct {
	owner flusher

	in       []byte
	wakes    int
	writes   [][][]byte
	onWritev func() // if set, runs before each Writev is recorded

	mu      sync.Mutex
	pending []func()
	closed  bool
}

func (m *memTransport) feed(b []byte) { m.in = append(m.in, b...) }

func (m *memTransport) Buffered() int { return len(m.in) }

func (m *memTransport) Peek(n int) []byte {
	if n > len(m.in) {
		return nil
	}
	return m.in[:n:n]
}

func (m *memTransport) Discard(n int) { m.in = m.in[n:] }

func (m *memTransport) Writev(bufs [][]byte) error {
	if m.onWritev != nil {
		m.onWritev()
	}
	m.writes = append(m.writes, append([][]byte(nil), bufs...))
	return nil
}

func (m *memTransport) Unsent() int { return 0 }
func (m *memTransport) Wake()       { m.wakes++ }

func (m *memTransport) Flush() error {
	return m.Do(func(err error) { m.owner.flush(true, err) })
}

func (m *memTransport) Do(fn func(err error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return net.ErrClosed
	}
	m.pending = append(m.pending, func() { fn(nil) })
	return nil
}

func (m *memTransport) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
}

func (m *memTransport) LocalAddr() net.Addr  { return nil }
func (m *memTransport) RemoteAddr() net.Addr { return nil }

// runLoop runs the queued tasks, as the event loop would; it returns how
// many there were.
func (m *memTransport) runLoop() int {
	m.mu.Lock()
	tasks := m.pending
	m.pending = nil
	m.mu.Unlock()
	for _, f := range tasks {
		f()
	}
	return len(tasks)
}

var _ transport = (*memTransport)(nil)

var errTestReject = errors.New("netio: test rejects the handshake")
