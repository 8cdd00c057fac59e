// Package binrec owns the strict decoder under tokenwatch's binary state
// records (the anomaly engine's token uses and snapshots, the policy engine's
// state records). Those bytes come from Kafka topics, so they are untrusted:
// every read is bounds-checked, the first error sticks, and later reads return
// zero values, so a decoder reads a whole record and checks Err once. What the
// fields mean belongs to the packages that write them.
package binrec

import (
	"encoding/binary"
	"errors"
)

// ErrTruncated is the error of a read past the end of the record.
var ErrTruncated = errors.New("truncated")

// Reader decodes B from the front.
type Reader struct {
	B   []byte
	Err error
}

// Fail records err unless an error is already recorded.
func (r *Reader) Fail(err error) {
	if r.Err == nil {
		r.Err = err
	}
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if r.Err != nil || len(r.B) < 1 {
		r.Fail(ErrTruncated)
		return 0
	}
	c := r.B[0]
	r.B = r.B[1:]
	return c
}

// Bytes reads n bytes; the result aliases B.
func (r *Reader) Bytes(n int) []byte {
	if r.Err != nil || n < 0 || len(r.B) < n {
		r.Fail(ErrTruncated)
		return nil
	}
	p := r.B[:n]
	r.B = r.B[n:]
	return p
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	if r.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.B)
	if n <= 0 {
		r.Fail(ErrTruncated)
		return 0
	}
	r.B = r.B[n:]
	return v
}

// Varint reads a signed (zig-zag) varint.
func (r *Reader) Varint() int64 {
	if r.Err != nil {
		return 0
	}
	v, n := binary.Varint(r.B)
	if n <= 0 {
		r.Fail(ErrTruncated)
		return 0
	}
	r.B = r.B[n:]
	return v
}
