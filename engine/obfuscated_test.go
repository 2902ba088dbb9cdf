package engine

import (
	"crypto/sha1"
	"testing"

	"gotorrentserver/metainfo"
)

// The obfuscated index follows the session table: a torrent is found by
// SHA-1("req2" + infohash) once added, magnets too, and no longer once
// removed.
func TestSessionByObfuscatedHash(t *testing.T) {
	f := newFixture(t, true)
	ih := f.mi.InfoHash
	want := sha1.Sum(append([]byte("req2"), ih[:]...))
	if got := ObfuscatedHash(ih); got != want {
		t.Fatalf("ObfuscatedHash %x, want %x", got, want)
	}
	if s := f.c.SessionByObfuscatedHash(want); s != f.s {
		t.Fatalf("lookup gave %p, want the session %p", s, f.s)
	}
	if s := f.c.SessionByObfuscatedHash(ih); s != nil {
		t.Fatal("the plain infohash must not be a key")
	}
	mag := &metainfo.Magnet{InfoHash: sha1.Sum([]byte("magnet"))}
	ms, err := f.c.AddMagnet(mag, AddOptions{Settings: Settings{Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	if s := f.c.SessionByObfuscatedHash(ObfuscatedHash(mag.InfoHash)); s != ms {
		t.Fatal("a magnet's session is not in the index")
	}
	if err := f.c.Remove(ih, false); err != nil {
		t.Fatal(err)
	}
	if s := f.c.SessionByObfuscatedHash(want); s != nil {
		t.Fatal("a removed session is still in the index")
	}
}
