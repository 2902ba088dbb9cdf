package netio

import (
	"bytes"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gotorrentserver/engine"
	"gotorrentserver/metainfo"
)

// wiretap is a TCP proxy on 127.0.0.1 in front of target that records how
// each connection through it began and whether the BitTorrent handshake's
// protocol string ever crossed it in the clear. Safe for concurrent use.
type wiretap struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []*tapped
	open   []net.Conn
}

type tapped struct {
	first   byte // 0x13 when the dialer began with the plaintext handshake, else 0
	started bool // the dialer has sent a byte, so first is meaningful
	clear   bool // "\x13BitTorrent protocol" seen in either direction
}

func newWiretap(t *testing.T, target netip.AddrPort) *wiretap {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &wiretap{ln: ln, target: target.String()}
	w.wg.Add(1)
	go w.accept()
	t.Cleanup(func() {
		ln.Close()
		w.mu.Lock()
		for _, c := range w.open {
			c.Close()
		}
		w.mu.Unlock()
		w.wg.Wait()
	})
	return w
}

func (w *wiretap) addr() netip.AddrPort {
	return netip.MustParseAddrPort(w.ln.Addr().String())
}

func (w *wiretap) accept() {
	defer w.wg.Done()
	for {
		in, err := w.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", w.target)
		if err != nil {
			in.Close()
			continue
		}
		tc := &tapped{}
		w.mu.Lock()
		w.conns = append(w.conns, tc)
		w.open = append(w.open, in, out)
		w.mu.Unlock()
		w.wg.Add(2)
		go w.copy(out, in, tc, true)
		go w.copy(in, out, tc, false)
	}
}

// copy moves bytes one way, watching them; either side closing closes both.
func (w *wiretap) copy(dst, src net.Conn, tc *tapped, dialer bool) {
	defer w.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 64<<10)
	var tail []byte // the last bytes, for a string cut across reads
	for first := true; ; first = false {
		n, err := src.Read(buf)
		if n > 0 {
			seen := append(tail, buf[:n]...)
			w.mu.Lock()
			if first && dialer {
				// A DH key's first byte is 0x13 one time in 256: only
				// the protocol string says plaintext.
				k := min(n, len(mseProtocol))
				tc.started = true
				if bytes.Equal(buf[:k], mseProtocol[:k]) {
					tc.first = 0x13
				}
			}
			if bytes.Contains(seen, mseProtocol) {
				tc.clear = true
			}
			w.mu.Unlock()
			tail = append(tail[:0], seen[max(0, len(seen)-len(mseProtocol)):]...)
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (w *wiretap) seen() []tapped {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]tapped, len(w.conns))
	for i, c := range w.conns {
		out[i] = *c
	}
	return out
}

// begun is seen without the connections whose dialer has sent nothing yet:
// a connection is recorded when accepted, before its first byte arrives.
func (w *wiretap) begun() []tapped {
	var out []tapped
	for _, c := range w.seen() {
		if c.started {
			out = append(out, c)
		}
	}
	return out
}

// encryptionPair is a seeding node with the policy seed and a leeching
// node with the policy leech that knows the seeder only through a
// wiretap; the leecher's session is returned with them, and the folder
// the seeder's data is in.
func encryptionPair(t *testing.T, seed, leech Encryption) (*wiretap, *engine.Session, *metainfo.MetaInfo, string) {
	t.Helper()
	data := testData(t, "enc", []int{500001, 300007})
	_, mi := makeTorrent(t, data, 64<<10)
	sn := startNodeWith(t, engine.Config{}, Config{Encryption: seed})
	addAndWait(t, sn, mi, filepath.Dir(data), engine.StateSeeding)
	tap := newWiretap(t, sn.addr())
	ln := startNodeWith(t, engine.Config{}, Config{Encryption: leech})
	s, err := ln.client.Add(mi, engine.AddOptions{Settings: engine.Settings{Dir: ln.dir}})
	if err != nil {
		t.Fatal(err)
	}
	s.AddPeers(addrs(tap.addr()), "test")
	return tap, s, mi, filepath.Dir(data)
}

// Two of our nodes under each pair of policies: the download completes,
// over RC4 (the protocol string never on the wire in the clear) whenever
// both allow it, in plaintext when one side disables MSE; a dialer that
// prefers MSE falls back to plaintext, once, for a peer that hangs up on
// it.
func TestEncryptionPolicies(t *testing.T) {
	for _, tc := range []struct {
		seed, leech Encryption
		// the connections the leecher made: whether each began in
		// plaintext and whether the protocol string crossed in the clear
		want []tapped
	}{
		{EncryptionPrefer, EncryptionPrefer, []tapped{{clear: false}}},
		{EncryptionPrefer, EncryptionRequire, []tapped{{clear: false}}},
		{EncryptionRequire, EncryptionPrefer, []tapped{{clear: false}}},
		{EncryptionPrefer, EncryptionDisable, []tapped{{first: 0x13, clear: true}}},
		{EncryptionDisable, EncryptionPrefer, []tapped{{clear: false}, {first: 0x13, clear: true}}},
	} {
		t.Run(tc.seed.String()+"-"+tc.leech.String(), func(t *testing.T) {
			tap, s, mi, src := encryptionPair(t, tc.seed, tc.leech)
			waitState(t, s, engine.StateSeeding, 30*time.Second)
			sameTree(t, mi, src, s.Snapshot().Dir)
			got := tap.seen()
			if len(got) != len(tc.want) {
				t.Fatalf("connections %+v, want %+v", got, tc.want)
			}
			for i, c := range got {
				if (c.first == 0x13) != (tc.want[i].first == 0x13) || c.clear != tc.want[i].clear {
					t.Fatalf("connection %d: %+v, want %+v (all: %+v)", i, c, tc.want[i], got)
				}
			}
		})
	}
}

// A node that requires encryption never speaks plaintext: it does not
// fall back for a peer that disables MSE, and it closes a plaintext
// handshake without answering it.
func TestEncryptionRequireRefusesPlaintext(t *testing.T) {
	tap, s, _, _ := encryptionPair(t, EncryptionDisable, EncryptionRequire)
	waitFor(t, "a dial", 10*time.Second, func() bool { return len(tap.seen()) >= 1 })
	// A fallback would follow the refusal within milliseconds.
	time.Sleep(time.Second)
	for i, c := range tap.seen() {
		if c.first == 0x13 || c.clear {
			t.Fatalf("connection %d went plaintext: %+v", i, c)
		}
	}
	if sn := s.Snapshot(); sn.Downloaded != 0 {
		t.Fatalf("downloaded %d bytes from a plaintext-only peer", sn.Downloaded)
	}

	n, mi := seedingNodeWith(t, Config{Encryption: EncryptionRequire})
	r := dialRaw(t, n.addr().String(), mi.InfoHash)
	if err := r.readHandshake(); err == nil {
		t.Fatal("a plaintext handshake was answered")
	}
	r.expectClosed("plaintext under require", 5*time.Second)
}
