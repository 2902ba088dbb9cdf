package dht

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"
)

// pendingTx is one query of ours awaiting a reply. Its channel has room for
// the single result, delivered by whoever removes the tx from Node.txs.
type pendingTx struct {
	addr netip.AddrPort
	ch   chan txResult
}

type txResult struct {
	msg Msg
	err error
}

// readLoop owns the socket's read side until Close closes the socket.
func (n *Node) readLoop() {
	buf := make([]byte, MaxPacketSize+1)
	for {
		nr, from, err := n.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || n.ctx.Err() != nil {
				return
			}
			// Transient errors (ICMP-induced on some systems): back off a
			// little so a persistent one cannot spin a core.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if nr > MaxPacketSize || from.Addr().Is6() != n.v6 || from.Port() == 0 {
			n.countBad()
			continue
		}
		n.handlePacket(buf[:nr], from)
	}
}

func (n *Node) countBad() {
	n.mu.Lock()
	n.stats.BadPackets++
	n.mu.Unlock()
}

func (n *Node) handlePacket(b []byte, from netip.AddrPort) {
	m, err := ParseMsg(b)
	switch {
	case err == nil && m.Y == 'q':
		n.serve(from, &m)
	case err == nil:
		n.deliver(from, &m)
	case errors.Is(err, ErrBadQuery):
		n.serveError(from, &m, ErrCodeProtocol, "invalid arguments")
	case errors.Is(err, ErrUnknownMethod):
		n.serveError(from, &m, ErrCodeMethod, "method unknown")
	default:
		n.countBad()
	}
}

// deliver hands a reply or error to the query that awaits it. Replies must
// come from the address we queried with a live transaction id; anything
// else is dropped, so spoofed replies cannot poison a lookup or the table.
func (n *Node) deliver(from netip.AddrPort, m *Msg) {
	n.mu.Lock()
	tx := n.txs[string(m.T)]
	if tx == nil || tx.addr != from {
		n.stats.BadPackets++
		n.mu.Unlock()
		return
	}
	delete(n.txs, string(m.T))
	res := txResult{msg: *m}
	if m.Y == 'r' {
		n.table.inserted(m.R.ID, from, n.cfg.Now())
	} else {
		e := m.E
		res.err = &e
	}
	n.mu.Unlock()
	tx.ch <- res
}

// query sends q to addr and waits for the reply, QueryTimeout or ctx. It
// fills in T, Y, our id and version. A timeout counts against the node in
// the routing table.
func (n *Node) query(ctx context.Context, addr netip.AddrPort, q Msg) (Msg, error) {
	ch := make(chan txResult, 1)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return Msg{}, ErrClosed
	}
	if len(n.txs) >= n.cfg.MaxPending {
		n.mu.Unlock()
		return Msg{}, ErrBusy
	}
	var tid [4]byte
	for {
		binary.BigEndian.PutUint32(tid[:], rand.Uint32())
		if n.txs[string(tid[:])] == nil {
			break
		}
	}
	key := string(tid[:])
	n.txs[key] = &pendingTx{addr: addr, ch: ch}
	q.T, q.Y, q.A.ID, q.V = tid[:], 'q', n.id, version
	n.mu.Unlock()

	if err := n.send(addr, &q); err != nil {
		n.dropTx(key, false)
		return Msg{}, err
	}
	timer := time.NewTimer(n.cfg.QueryTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.msg, r.err
	case <-timer.C:
		if n.dropTx(key, true) {
			return Msg{}, ErrTimeout
		}
	case <-ctx.Done():
		if n.dropTx(key, false) {
			return Msg{}, ctx.Err()
		}
	}
	r := <-ch // the reply won the race with the timer
	return r.msg, r.err
}

// dropTx removes a pending tx, reporting false if a reply already took it.
func (n *Node) dropTx(key string, timedOut bool) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	tx := n.txs[key]
	if tx == nil {
		return false
	}
	delete(n.txs, key)
	if timedOut {
		n.table.failed(tx.addr)
	}
	return true
}

func (n *Node) send(addr netip.AddrPort, m *Msg) error {
	b, err := EncodeMsg(m)
	if err != nil {
		return err
	}
	_, err = n.conn.WriteToUDPAddrPort(b, addr)
	if err != nil && n.ctx.Err() != nil {
		return ErrClosed
	}
	return err
}
