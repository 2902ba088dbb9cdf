package engine

import (
	"sync"
	"sync/atomic"
	"time"
)

const (
	// pieceBufBudget is how many bytes of idle piece buffers the client
	// keeps for reuse. A download cycles a buffer per piece; allocating
	// each afresh cost more CPU than hashing it (page faults on new memory
	// and GC), so buffers come back here once their piece is written.
	pieceBufBudget = 128 << 20
	// pieceBufIdle: buffers nobody asked for in this long are released,
	// so a seedbox that finished its downloads gives the memory back.
	pieceBufIdle = 30 * time.Second
)

// bufPool recycles piece buffers between all sessions. Buffers are grouped
// by capacity (the torrent's piece length), each group a buffered channel,
// so sessions on different goroutines share it without a lock on the hot
// path. Safe for concurrent use.
type bufPool struct {
	budget  int64
	held    atomic.Int64
	lastGet atomic.Int64 // unix nanoseconds
	classes sync.Map     // capacity int -> chan []byte
}

func newBufPool(budget int64) *bufPool { return &bufPool{budget: budget} }

// get returns a buffer of len size and cap capacity, reused when one is
// idle. Its contents are whatever the last user left: callers overwrite
// every byte before reading any.
func (p *bufPool) get(size, capacity int, now time.Time) []byte {
	p.lastGet.Store(now.UnixNano())
	if ch := p.class(capacity, false); ch != nil {
		select {
		case b := <-ch:
			p.held.Add(-int64(cap(b)))
			return b[:size]
		default:
		}
	}
	return make([]byte, size, capacity)
}

// put offers b for reuse; it is dropped when the pool is at its budget.
func (p *bufPool) put(b []byte) {
	c := int64(cap(b))
	if c == 0 || p.held.Add(c) > p.budget {
		p.held.Add(-c)
		return
	}
	select {
	case p.class(cap(b), true) <- b[:0]:
	default:
		p.held.Add(-c)
	}
}

// class is the channel for capacity c, made on first put.
func (p *bufPool) class(c int, create bool) chan []byte {
	if v, ok := p.classes.Load(c); ok {
		return v.(chan []byte)
	}
	if !create {
		return nil
	}
	v, _ := p.classes.LoadOrStore(c, make(chan []byte, max(1, p.budget/int64(c))))
	return v.(chan []byte)
}

// trim releases every idle buffer when none was asked for since idle ago.
func (p *bufPool) trim(now time.Time, idle time.Duration) {
	if p.held.Load() == 0 || now.UnixNano()-p.lastGet.Load() < int64(idle) {
		return
	}
	p.classes.Range(func(_, v any) bool {
		ch := v.(chan []byte)
		for {
			select {
			case b := <-ch:
				p.held.Add(-int64(cap(b)))
				continue
			default:
			}
			return true
		}
	})
}
