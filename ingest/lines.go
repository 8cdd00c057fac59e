package ingest

import (
	"bytes"
	"errors"
	"io"

	"github.com/tokenwatch/tokenwatch"
)

// errNoLine is returned by lineReader.next when no complete line is available yet
// and the reader is not final (follow mode, or a pump that timed out): the caller
// retries later. The partial line stays buffered.
var errNoLine = errors.New("no complete line yet")

// lineReader splits a byte stream into lines without ever buffering more than
// max+readSize bytes, however long a line is.
//
// A line is the bytes before '\n', with one trailing '\r' removed. A line longer
// than max bytes yields its first max bytes with FlagTruncated; the rest of it,
// up to and including its '\n', is skipped and never held in memory.
type lineReader struct {
	// read fills p like io.Reader.Read. It may return errNoLine to say that no
	// data is available now (the caller will call next again later).
	read func(p []byte) (int, error)
	buf  []byte
	r, w int // unread data is buf[r:w]
	max  int
	// skipping is true while the rest of a truncated line is being dropped.
	skipping bool
	// eof is set once read returned io.EOF; final says whether an unterminated
	// last line is to be emitted at EOF (plain files) or kept for later (follow).
	eof   bool
	final bool
	err   error
	// line is the number of lines returned or skipped so far; the next line's
	// number is line+1.
	line int64
}

const (
	minReadBuf = 64 << 10
	readChunk  = 64 << 10
)

func newLineReader(read func(p []byte) (int, error), max int, final bool) *lineReader {
	if max <= 0 {
		panic("BUG: lineReader max must be positive")
	}
	n := minReadBuf
	if max+1 < n {
		n = max + 1
	}
	return &lineReader{read: read, buf: make([]byte, n), max: max, final: final}
}

// reset points l at a new stream, keeping its buffer, and restarts line numbers.
func (l *lineReader) reset(read func(p []byte) (int, error), final bool) {
	l.read, l.final = read, final
	l.r, l.w = 0, 0
	l.skipping, l.eof, l.err = false, false, nil
	l.line = 0
}

// buffered reports whether l holds unread bytes (a partial line).
func (l *lineReader) buffered() int { return l.w - l.r }

// next appends the next line to dst. It returns the extended dst and the line's
// flags; err is nil when a line was appended, errNoLine when a complete line is
// not available yet, io.EOF at the end of the stream, or the read error.
func (l *lineReader) next(dst []byte) ([]byte, tokenwatch.RecordFlags, error) {
	for {
		if l.skipping {
			if i := indexNL(l.buf[l.r:l.w]); i >= 0 {
				l.r += i + 1
				l.skipping = false
				continue
			}
			l.r, l.w = 0, 0
		} else if i := indexNL(l.buf[l.r:l.w]); i >= 0 {
			line := l.buf[l.r : l.r+i]
			l.r += i + 1
			l.line++
			if len(line) > l.max { // can only happen if buf grew past max
				return append(dst, line[:l.max]...), tokenwatch.FlagTruncated, nil
			}
			return append(dst, trimCR(line)...), 0, nil
		} else if l.w-l.r > l.max {
			// No newline within max bytes: emit the cut line, skip the rest.
			line := l.buf[l.r : l.r+l.max]
			dst = append(dst, line...)
			l.r, l.w = 0, 0
			l.skipping = true
			l.line++
			return dst, tokenwatch.FlagTruncated, nil
		}
		if l.eof || l.err != nil {
			if l.err != nil && l.err != io.EOF {
				return dst, 0, l.err
			}
			if l.final && l.w > l.r && !l.skipping {
				line := l.buf[l.r:l.w]
				l.r, l.w = 0, 0
				l.line++
				return append(dst, trimCR(line)...), 0, nil
			}
			if l.final {
				return dst, 0, io.EOF
			}
			// Follow mode: keep the partial line and report no line; a later
			// read may complete it.
			l.eof = false
			return dst, 0, errNoLine
		}
		if err := l.fill(); err != nil {
			if err == errNoLine {
				return dst, 0, errNoLine
			}
			if err == io.EOF {
				l.eof = true
			} else {
				l.err = err
			}
		}
	}
}

// fill reads more data, compacting or growing buf (never beyond max+readChunk).
func (l *lineReader) fill() error {
	if l.r > 0 {
		l.w = copy(l.buf, l.buf[l.r:l.w])
		l.r = 0
	}
	if l.w == len(l.buf) {
		// Grow: the partial line does not fit. It is at most max bytes (next
		// cuts it once it exceeds max), so buf stays below max+readChunk.
		n := 2 * len(l.buf)
		if lim := l.max + readChunk; n > lim {
			n = lim
		}
		if n <= len(l.buf) {
			panic("BUG: lineReader buffer cannot grow")
		}
		nb := make([]byte, n)
		copy(nb, l.buf[:l.w])
		l.buf = nb
	}
	n, err := l.read(l.buf[l.w:])
	l.w += n
	if n > 0 && err == errNoLine {
		return nil
	}
	if n > 0 && err == io.EOF {
		// Deliver the data first; EOF will be seen on the next read.
		return nil
	}
	return err
}

// skipLines discards n lines (used to resume a file at a committed line).
func (l *lineReader) skipLines(n int64) error {
	var scratch []byte
	for l.line < n {
		var err error
		scratch, _, err = l.next(scratch[:0])
		if err != nil {
			return err
		}
	}
	return nil
}

func indexNL(b []byte) int { return bytes.IndexByte(b, '\n') }

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}
