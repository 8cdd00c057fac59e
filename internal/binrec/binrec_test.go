package binrec

import (
	"encoding/binary"
	"errors"
	"testing"
)

func TestReader(t *testing.T) {
	rec := []byte{7}
	rec = binary.AppendUvarint(rec, 300)
	rec = binary.AppendVarint(rec, -5)
	rec = append(rec, "abc"...)
	r := Reader{B: rec}
	if b, u, v, s := r.Byte(), r.Uvarint(), r.Varint(), string(r.Bytes(3)); b != 7 || u != 300 || v != -5 || s != "abc" || r.Err != nil || len(r.B) != 0 {
		t.Fatalf("read %d %d %d %q, err %v, %d left", b, u, v, s, r.Err, len(r.B))
	}
	for _, tc := range []struct {
		name string
		read func(r *Reader)
	}{
		{"byte past the end", func(r *Reader) { r.Byte() }},
		{"bytes past the end", func(r *Reader) { r.Bytes(1) }},
		{"negative length", func(r *Reader) { r.B = []byte{1}; r.Bytes(-1) }},
		{"uvarint past the end", func(r *Reader) { r.Uvarint() }},
		{"unterminated varint", func(r *Reader) { r.B = []byte{0x80, 0x80}; r.Varint() }},
	} {
		r := Reader{}
		tc.read(&r)
		if !errors.Is(r.Err, ErrTruncated) {
			t.Errorf("%s: err %v, want ErrTruncated", tc.name, r.Err)
		}
		// The first error sticks; later reads return zero values.
		r.B = []byte{9, 9}
		if r.Byte() != 0 || r.Uvarint() != 0 || r.Bytes(1) != nil || !errors.Is(r.Err, ErrTruncated) {
			t.Errorf("%s: reads after an error return values", tc.name)
		}
	}
	r = Reader{}
	first := errors.New("first")
	r.Fail(first)
	r.Fail(errors.New("second"))
	if r.Err != first {
		t.Errorf("Fail kept %v, want the first error", r.Err)
	}
}
