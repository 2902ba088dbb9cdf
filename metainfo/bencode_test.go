package metainfo

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestValidateRejects(t *testing.T) {
	deep := strings.Repeat("l", 100) + strings.Repeat("e", 100)
	for _, in := range []string{
		"",
		"d1:a",                  // truncated dict: panics cristalhq v0.4.0
		"9223372036854775807:x", // huge length: panics cristalhq v0.4.0
		"99999999999999999999:x",
		"1:ab", // trailing bytes
		"i01e", // leading zero
		"i-0e", "ie", "i-e", "i1", "i+1e", "i1.5e",
		"i9223372036854775808e", // overflows int64
		"01:a", "-1:a", "+1:a", "1a", ":", "5:abc",
		"l", "li1e", "d", "di1ei2ee", // dict key not a string
		"d1:ai1e1:ai2ee", // duplicate key
		"x", "e", "le1",
		deep,
	} {
		if err := Validate([]byte(in), DefaultLimits); err == nil {
			t.Errorf("Validate(%q) accepted", in)
		} else if !errors.Is(err, ErrBencode) {
			t.Errorf("Validate(%q): %v does not wrap ErrBencode", in, err)
		}
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%q) accepted", in)
		}
	}
}

func TestValidateLimits(t *testing.T) {
	if err := Validate([]byte("llee"), Limits{MaxDepth: 1}); err == nil {
		t.Error("depth 2 accepted under MaxDepth 1")
	}
	if err := Validate([]byte("llee"), Limits{MaxDepth: 2}); err != nil {
		t.Errorf("depth 2 under MaxDepth 2: %v", err)
	}
	if err := Validate([]byte("4:abcd"), Limits{MaxSize: 5}); err == nil {
		t.Error("6 bytes accepted under MaxSize 5")
	}
}

func TestDecodeValues(t *testing.T) {
	for in, want := range map[string]any{
		"i0e":                      int64(0),
		"i-42e":                    int64(-42),
		"i9223372036854775807e":    int64(9223372036854775807),
		"0:":                       []byte{},
		"4:spam":                   []byte("spam"),
		"le":                       []any{},
		"l4:spami7ee":              []any{[]byte("spam"), int64(7)},
		"de":                       map[string]any{},
		"d1:bi1e1:al1:xee":         map[string]any{"a": []any{[]byte("x")}, "b": int64(1)}, // unsorted keys allowed
		"d3:cow3:moo4:spam4:eggse": map[string]any{"cow": []byte("moo"), "spam": []byte("eggs")},
	} {
		got, err := Decode([]byte(in))
		if err != nil {
			t.Errorf("Decode(%q): %v", in, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Decode(%q) = %#v, want %#v", in, got, want)
		}
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	v := map[string]any{"z": int64(-3), "a": []any{[]byte("x"), int64(1), map[string]any{}}, "m": []byte{0, 1, 2}}
	b, err := Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	if want := "d1:al1:xi1edee1:m3:\x00\x01\x021:zi-3ee"; string(b) != want {
		t.Fatalf("Encode = %q, want %q (sorted keys)", b, want)
	}
	back, err := Decode(b)
	if err != nil || !reflect.DeepEqual(back, v) {
		t.Fatalf("round trip = %#v, %v", back, err)
	}
}

func TestRawDictValue(t *testing.T) {
	doc := []byte("d8:announce3:url4:infod4:name1:x6:lengthi5eee")
	raw, ok := RawDictValue(doc, "info")
	if !ok || !bytes.Equal(raw, []byte("d4:name1:x6:lengthi5ee")) {
		t.Fatalf("RawDictValue = %q, %v", raw, ok)
	}
	if _, ok := RawDictValue(doc, "nope"); ok {
		t.Error("found a missing key")
	}
	if _, ok := RawDictValue([]byte("l4:infoe"), "info"); ok {
		t.Error("found a key in a list")
	}
}
