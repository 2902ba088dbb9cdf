package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gotorrentserver/metainfo"
)

// seedScript makes a 7-piece v1 torrent of random data in dir, seeds it
// from a libtorrent session listening on 127.0.0.1 only, prints
// "<port> <infohash>" and serves until stdin closes.
const seedScript = `
import libtorrent as lt, os, sys, time
d = sys.argv[1]
path = os.path.join(d, 'payload.bin')
with open(path, 'wb') as f:
    f.write(os.urandom(6 * 16384 + 4096))
fs = lt.file_storage()
lt.add_files(fs, path)
ct = lt.create_torrent(fs, 16384, flags=lt.create_torrent.v1_only)
lt.set_piece_hashes(ct, d)
ti = lt.torrent_info(ct.generate())
ses = lt.session({'listen_interfaces': '127.0.0.1:0', 'enable_dht': False,
    'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
    'enable_incoming_utp': False, 'enable_outgoing_utp': False})
h = ses.add_torrent({'ti': ti, 'save_path': d})
for _ in range(200):
    if h.status().is_seeding:
        break
    time.sleep(0.02)
print(ses.listen_port(), str(ti.info_hashes().v1), flush=True)
sys.stdin.read()
`

// TestInteropLibtorrent speaks the wire protocol with a real libtorrent
// seed: our handshake, extension handshake and requests must be accepted,
// and everything it sends must decode under the netio framing contract.
func TestInteropLibtorrent(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import libtorrent").Run(); err != nil {
		t.Skipf("SKIP (tool missing): python3-libtorrent not importable by %s: %v", py, err)
	}
	dir := t.TempDir()
	cmd := exec.Command(py, "-c", seedScript, dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})

	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
	}()
	var fields []string
	select {
	case s := <-line:
		fields = strings.Fields(s)
	case <-time.After(20 * time.Second):
		t.Fatal("libtorrent seed did not start within 20 s")
	}
	if len(fields) != 2 {
		t.Fatalf("seed printed %q", fields)
	}
	ih, err := metainfo.ParseHash(fields[1])
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "payload.bin"))
	if err != nil {
		t.Fatal(err)
	}

	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", fields[0]), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))

	ours := Handshake{Reserved: DefaultReserved(false), InfoHash: ih, PeerID: NewPeerID(nil)}
	ext, err := EncodeExtHandshake(ExtHandshake{M: map[string]int{"ut_metadata": 3}, V: "GoTorrentServer test", ReqQ: 250})
	if err != nil {
		t.Fatal(err)
	}
	out := AppendHandshake(nil, ours)
	out = AppendExtended(out, ExtHandshakeID, ext)
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}

	r := bufio.NewReaderSize(conn, 64<<10)
	hb := make([]byte, HandshakeLen)
	if _, err := io.ReadFull(r, hb); err != nil {
		t.Fatalf("reading libtorrent's handshake: %v", err)
	}
	theirs, err := ParseHandshake(hb)
	if err != nil {
		t.Fatal(err)
	}
	if theirs.InfoHash != ih || !theirs.Reserved.SupportsExtended() || !theirs.Reserved.SupportsFast() {
		t.Fatalf("handshake %+v: want our infohash with extension and fast bits", theirs)
	}
	if name := ClientName(theirs.PeerID); !strings.HasPrefix(name, "libtorrent (Rasterbar) 2.") {
		t.Errorf("ClientName(%q) = %q", theirs.PeerID, name)
	} else {
		t.Logf("peer id %q: %s", theirs.PeerID[:8], name)
	}

	const numPieces, lastLen = 7, 4096
	limit := MaxFrame(DefaultBlockLen, numPieces)
	var m Message
	// next follows the netio contract: Peek 4, CheckFrame, Peek n, Decode,
	// Discard. Unknown messages are skipped.
	next := func() Message {
		t.Helper()
		for {
			hdr, err := r.Peek(4)
			if err != nil {
				t.Fatalf("peek: %v", err)
			}
			n, err := CheckFrame(hdr, limit)
			if err != nil {
				t.Fatal(err)
			}
			f, err := r.Peek(n)
			if err != nil {
				t.Fatalf("peek %d: %v", n, err)
			}
			err = Decode(f, &m)
			r.Discard(n)
			if errors.Is(err, ErrUnknownMessage) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
	}

	sentInterested, unchoked, gotExt, gotHaves := false, false, false, false
	for deadline := time.Now().Add(10 * time.Second); !(unchoked && gotExt && gotHaves); {
		if time.Now().After(deadline) {
			t.Fatalf("no unchoke/ext handshake/have-all from libtorrent (unchoked %v ext %v haves %v)", unchoked, gotExt, gotHaves)
		}
		msg := next()
		switch msg.Type {
		case Extended:
			if msg.ExtID != ExtHandshakeID {
				continue
			}
			eh, err := ParseExtHandshake(msg.ExtPayload)
			if err != nil {
				t.Fatalf("libtorrent's extension handshake %q: %v", msg.ExtPayload, err)
			}
			if eh.M["ut_metadata"] == 0 || !strings.HasPrefix(eh.V, "libtorrent") ||
				eh.YourIP != netipLoopback || eh.MetadataSize <= 0 {
				t.Errorf("extension handshake parsed as %+v", eh)
			}
			t.Logf("libtorrent ext handshake: %+v", eh)
			gotExt = true
		case HaveAll:
			gotHaves = true
		case Bitfield:
			if err := ValidateBitfield(msg.Bitfield, numPieces); err != nil {
				t.Fatal(err)
			}
			gotHaves = true
		case Unchoke:
			unchoked = true
		}
		if gotHaves && !sentInterested {
			conn.Write(AppendSimple(nil, Interested))
			sentInterested = true
		}
	}

	pieceSize := func(i int) int64 {
		if i == numPieces-1 {
			return lastLen
		}
		return DefaultBlockLen
	}
	if err := ValidateRequest(1, DefaultBlockLen-1, 2, pieceSize, numPieces); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("our validator accepts the request libtorrent must reject: %v", err)
	}
	var req []byte
	req = AppendRequest(req, 0, 0, DefaultBlockLen)
	req = AppendRequest(req, numPieces-1, 0, lastLen)
	req = AppendRequest(req, 1, DefaultBlockLen-1, 2) // crosses the piece end
	if _, err := conn.Write(req); err != nil {
		t.Fatal(err)
	}
	got := map[uint32][]byte{}
	rejected := false
	for len(got) < 2 || !rejected {
		switch msg := next(); msg.Type {
		case Piece:
			got[msg.Index] = bytes.Clone(msg.Block)
		case Reject:
			if msg.Index != 1 || msg.Begin != DefaultBlockLen-1 || msg.Length != 2 {
				t.Fatalf("unexpected reject %+v", msg)
			}
			rejected = true
		}
	}
	if !bytes.Equal(got[0], data[:DefaultBlockLen]) {
		t.Error("block 0 differs from the seeded file")
	}
	if !bytes.Equal(got[numPieces-1], data[len(data)-lastLen:]) {
		t.Error("last block differs from the seeded file")
	}
}

var netipLoopback = netip.MustParseAddr("127.0.0.1")
