package ext

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"gotorrentserver/metainfo"
)

func TestParseMetadataMsgValid(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 100)
	cases := []struct {
		name string
		in   []byte
		want MetadataMsg
	}{
		{"request", []byte("d8:msg_typei0e5:piecei3ee"), MetadataMsg{Type: MetadataRequest, Piece: 3}},
		{"reject", []byte("d8:msg_typei2e5:piecei0ee"), MetadataMsg{Type: MetadataReject}},
		{"data", append([]byte("d8:msg_typei1e5:piecei1e10:total_sizei16484ee"), data...),
			MetadataMsg{Type: MetadataData, Piece: 1, TotalSize: 16484, Data: data}},
		// Data that itself looks like bencode must not confuse the scanner.
		{"data-bencode-like", []byte("d8:msg_typei1e5:piecei0e10:total_sizei4ee4:spam"),
			MetadataMsg{Type: MetadataData, TotalSize: 4, Data: []byte("4:spam")}},
		{"unknown-key", []byte("d1:xli1ee8:msg_typei0e5:piecei0ee"), MetadataMsg{Type: MetadataRequest}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseMetadataMsg(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != c.want.Type || got.Piece != c.want.Piece || got.TotalSize != c.want.TotalSize || !bytes.Equal(got.Data, c.want.Data) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestParseMetadataMsgInvalid(t *testing.T) {
	big := strings.Repeat("a", MetadataPieceLen+1)
	cases := map[string]string{
		"empty":            "",
		"not-dict":         "li0ee",
		"truncated":        "d8:msg_typei0e5:piecei0e",
		"no-type":          "d5:piecei0ee",
		"no-piece":         "d8:msg_typei0ee",
		"string-type":      "d8:msg_type1:05:piecei0ee",
		"negative-piece":   "d8:msg_typei0e5:piecei-1ee",
		"huge-piece":       "d8:msg_typei0e5:piecei512ee",
		"request-trailing": "d8:msg_typei0e5:piecei0eeXX",
		"data-no-total":    "d8:msg_typei1e5:piecei0eeXX",
		"data-zero-total":  "d8:msg_typei1e5:piecei0e10:total_sizei0eeXX",
		"data-huge-total":  "d8:msg_typei1e5:piecei0e10:total_sizei8388609eeXX",
		"data-empty":       "d8:msg_typei1e5:piecei0e10:total_sizei5ee",
		"data-too-long":    "d8:msg_typei1e5:piecei0e10:total_sizei99999ee" + big,
		"dup-key":          "d8:msg_typei0e8:msg_typei0e5:piecei0ee",
		"leading-zero":     "d8:msg_typei00e5:piecei0ee",
		"huge-strlen":      "d99999999999:msg_typei0ee",
		"deep":             "d1:x" + strings.Repeat("l", 10) + strings.Repeat("e", 10) + "8:msg_typei0e5:piecei0ee",
		"dict-too-long":    "d1:x2000:" + strings.Repeat("a", 2000) + "8:msg_typei0e5:piecei0ee",
		"int-key":          "di1ei2e8:msg_typei0e5:piecei0ee",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if m, err := ParseMetadataMsg([]byte(in)); !errors.Is(err, ErrBadMetadataMsg) {
				t.Fatalf("got %+v, %v; want ErrBadMetadataMsg", m, err)
			}
		})
	}
	if _, err := ParseMetadataMsg([]byte("d8:msg_typei7e5:piecei0ee")); !errors.Is(err, ErrUnknownMetadataType) {
		t.Fatalf("msg_type 7: %v, want ErrUnknownMetadataType", err)
	}
}

func TestAppendMetadataMsgRoundTrip(t *testing.T) {
	for _, m := range []MetadataMsg{
		{Type: MetadataRequest, Piece: 7},
		{Type: MetadataReject, Piece: 0},
		{Type: MetadataData, Piece: 2, TotalSize: 40000, Data: bytes.Repeat([]byte{0xee}, 40000-2*MetadataPieceLen)},
	} {
		enc := AppendMetadataMsg([]byte("prefix"), m)
		if !bytes.HasPrefix(enc, []byte("prefix")) {
			t.Fatal("dst prefix lost")
		}
		// The dict must be canonical bencode, so any client can read it.
		end, err := dictPrefixLen(enc[6:], maxMetadataDict, 4)
		if err != nil {
			t.Fatal(err)
		}
		if err := metainfo.Validate(enc[6:6+end], metainfo.DefaultLimits); err != nil {
			t.Fatal(err)
		}
		got, err := ParseMetadataMsg(enc[6:])
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != m.Type || got.Piece != m.Piece || got.TotalSize != m.TotalSize || !bytes.Equal(got.Data, m.Data) {
			t.Fatalf("round trip %+v -> %+v", m, got)
		}
	}
}

// The prefix scanner must find the same end the strict validator accepts.
func TestDictPrefixLenAgreesWithValidate(t *testing.T) {
	for _, doc := range []string{"de", "d1:ai1ee", "d1:ald1:bi-3eeee", "d3:key5:value1:zlee", "d1:a0:e"} {
		for _, tail := range []string{"", "e", "d", "i1e", "garbage"} {
			n, err := dictPrefixLen([]byte(doc+tail), 1024, 8)
			if err != nil || n != len(doc) {
				t.Fatalf("%q+%q: got %d, %v; want %d", doc, tail, n, err, len(doc))
			}
		}
	}
}

func TestMetadataServer(t *testing.T) {
	info := bytes.Repeat([]byte("0123456789"), 3500) // 35,000 bytes: 3 pieces
	s := NewMetadataServer(info)
	if s.Size() != int64(len(info)) {
		t.Fatalf("size %d", s.Size())
	}
	var got []byte
	for piece := 0; piece < 3; piece++ {
		m, err := ParseMetadataMsg(s.Answer(nil, MetadataMsg{Type: MetadataRequest, Piece: piece}))
		if err != nil || m.Type != MetadataData || m.Piece != piece || m.TotalSize != int64(len(info)) {
			t.Fatalf("piece %d: %+v, %v", piece, m, err)
		}
		got = append(got, m.Data...)
	}
	if !bytes.Equal(got, info) {
		t.Fatal("served pieces do not reassemble the info dict")
	}
	m, err := ParseMetadataMsg(s.Answer(nil, MetadataMsg{Type: MetadataRequest, Piece: 3}))
	if err != nil || m.Type != MetadataReject || m.Piece != 3 {
		t.Fatalf("out of range: %+v, %v", m, err)
	}
	if out := s.Answer([]byte("x"), MetadataMsg{Type: MetadataReject}); string(out) != "x" {
		t.Fatalf("answered a reject: %q", out)
	}
}
