package metainfo

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseMagnet(t *testing.T) {
	const hexHash = "c8717cafcf87b92971f6ce0b1cf3b77562f62b16"
	m, err := ParseMagnet("magnet:?xt=urn:btih:" + hexHash +
		"&dn=My+Files%21&tr=http%3A%2F%2F127.0.0.1%3A6969%2Fannounce&tr=udp://127.0.0.1:6969" +
		"&tr=udp://127.0.0.1:6969&x.pe=127.0.0.1:51413&x.pe=[::1]:6881&ws=http://127.0.0.1:8/w&so=0,2,4-6")
	if err != nil {
		t.Fatal(err)
	}
	want := &Magnet{
		Name:       "My Files!",
		Trackers:   []string{"http://127.0.0.1:6969/announce", "udp://127.0.0.1:6969"},
		Peers:      []string{"127.0.0.1:51413", "[::1]:6881"},
		WebSeeds:   []string{"http://127.0.0.1:8/w"},
		SelectOnly: []int{0, 2, 4, 5, 6},
	}
	want.InfoHash, _ = ParseHash(hexHash)
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v\nwant %+v", m, want)
	}
	back, err := ParseMagnet(m.String())
	if err != nil || !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip %+v, %v", back, err)
	}
	if !strings.HasSuffix(m.String(), "&so=0,2,4-6") {
		t.Fatalf("so not written back as ranges: %s", m.String())
	}
}

// A short range must not re-encode into a magnet too long to parse again.
func TestMagnetSelectOnlyWideRange(t *testing.T) {
	m, err := ParseMagnet("magnet:?xt=urn:btih:c8717cafcf87b92971f6ce0b1cf3b77562f62b16&so=5,0-12770,3,4")
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseMagnet(m.String())
	if err != nil || !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip of %d indices: %v", len(m.SelectOnly), err)
	}
	if !strings.HasSuffix(m.String(), "&so=5,0-12770,3-4") {
		t.Fatalf("got %s", m.String())
	}
}

func TestParseMagnetBase32(t *testing.T) {
	hexM, err := ParseMagnet("magnet:?xt=urn:btih:c8717cafcf87b92971f6ce0b1cf3b77562f62b16")
	if err != nil {
		t.Fatal(err)
	}
	b32, err := ParseMagnet("magnet:?xt=urn:btih:zbyxzl6pq64ss4pwzyfrz45xovrpmkyw")
	if err != nil {
		t.Fatal(err)
	}
	if hexM.InfoHash != b32.InfoHash {
		t.Fatalf("base32 %s != hex %s", b32.InfoHash, hexM.InfoHash)
	}
}

func TestParseMagnetHybridAndV2(t *testing.T) {
	const btmh = "urn:btmh:1220caf1e1c30e81cb361b9ee167c4aa64228a7fa4fa9f6105232b28ad099f3a302e"
	if _, err := ParseMagnet("magnet:?xt=" + btmh); !errors.Is(err, ErrV2Only) ||
		!strings.Contains(err.Error(), "v2-only magnet links are not supported") {
		t.Fatalf("btmh alone: %v", err)
	}
	m, err := ParseMagnet("magnet:?xt=" + btmh + "&xt=urn:btih:c8717cafcf87b92971f6ce0b1cf3b77562f62b16")
	if err != nil || m.InfoHash.String() != "c8717cafcf87b92971f6ce0b1cf3b77562f62b16" {
		t.Fatalf("hybrid: %v %v", m, err)
	}
}

func TestParseMagnetRejects(t *testing.T) {
	for _, in := range []string{
		"", "http://x", "magnet:", "magnet:?dn=x",
		"magnet:?xt=urn:btih:abc",
		"magnet:?xt=urn:btih:zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
		"magnet:?xt=urn:btih:zbyxzl6pq64ss4pwzyfrz45xovrpmky1",
		"magnet:?xt=urn:btih:c8717cafcf87b92971f6ce0b1cf3b77562f62b16&x.pe=nohost",
		"magnet:?xt=urn:btih:c8717cafcf87b92971f6ce0b1cf3b77562f62b16&x.pe=1.2.3.4:0",
		"magnet:?xt=urn:btih:c8717cafcf87b92971f6ce0b1cf3b77562f62b16&so=3-1",
		"magnet:?xt=urn:btih:c8717cafcf87b92971f6ce0b1cf3b77562f62b16&so=0-999999999",
		"magnet:?xt=urn:btih:c8717cafcf87b92971f6ce0b1cf3b77562f62b16&dn=%zz",
		"magnet:?xt=urn:btih:c8717cafcf87b92971f6ce0b1cf3b77562f62b16&xt=urn:btih:0000000000000000000000000000000000000000",
		"magnet:?xt=urn:btih:" + strings.Repeat("a", MaxMagnetLength),
	} {
		if _, err := ParseMagnet(in); err == nil {
			t.Errorf("accepted %q", in)
		} else if !errors.Is(err, ErrMagnet) && !errors.Is(err, ErrV2Only) {
			t.Errorf("%q: %v wraps no sentinel", in, err)
		}
	}
}
