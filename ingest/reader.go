package ingest

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// ReaderSource reads lines from a stream that cannot be rewound or polled, such
// as stdin. A goroutine pumps the stream into a few fixed chunks so that Next can
// honour ctx and the flush interval even while the stream blocks.
//
// Records have Origin{Source: name, Partition: -1, Offset: 1-based line number};
// name is "-" for stdin. Commit only records progress: a stream cannot be
// replayed, so on shutdown the pipeline drains what Next already returned.
type ReaderSource struct {
	name string
	kind tokenwatch.SourceKind
	lim  Limits
	lr   *lineReader

	chunks chan []byte // filled chunks, closed at the end of the stream
	free   chan []byte
	cur    []byte // unread part of the chunk being consumed
	curBuf []byte // the whole chunk, returned to free when consumed
	errMu  sync.Mutex
	err    error // the stream's final error, read after chunks is closed

	// Set by Next for read.
	ctx  context.Context
	wake <-chan time.Time

	arenas    arenas
	committed int64
	timer     *time.Timer
	closer    io.Closer
}

const pumpChunks = 4

// NewReaderSource starts reading r. If r is an io.Closer, Close closes it.
func NewReaderSource(name string, r io.Reader, kind tokenwatch.SourceKind, lim Limits) *ReaderSource {
	lim = lim.withDefaults()
	s := &ReaderSource{name: name, kind: kind, lim: lim, chunks: make(chan []byte, pumpChunks), free: make(chan []byte, pumpChunks)}
	for range pumpChunks {
		s.free <- make([]byte, readChunk)
	}
	s.lr = newLineReader(s.read, lim.MaxRecordBytes, true)
	if c, ok := r.(io.Closer); ok {
		s.closer = c
	}
	go s.pump(r)
	return s
}

func (s *ReaderSource) pump(r io.Reader) {
	defer close(s.chunks)
	for buf := range s.free {
		n, err := r.Read(buf[:cap(buf)])
		if n > 0 {
			s.chunks <- buf[:n]
		} else {
			s.free <- buf
		}
		if err != nil {
			if err != io.EOF {
				slog.Warn("reader source: read error", "source", s.name, "err", err)
				metricReadErrors.WithLabelValues(sourceType(s.name)).Inc()
			}
			s.errMu.Lock()
			s.err = err
			s.errMu.Unlock()
			return
		}
	}
}

func sourceType(name string) string {
	if name == "-" {
		return "stdin"
	}
	return "file"
}

// read feeds the line reader from the pumped chunks. It returns errNoLine when
// ctx is done or the flush deadline fires while no data is available.
func (s *ReaderSource) read(p []byte) (int, error) {
	if len(s.cur) == 0 {
		if s.curBuf != nil {
			s.free <- s.curBuf
			s.curBuf = nil
		}
		select {
		case c, ok := <-s.chunks:
			if !ok {
				s.errMu.Lock()
				err := s.err
				s.errMu.Unlock()
				if err == nil {
					err = io.EOF
				}
				if err != io.EOF {
					err = io.EOF // already logged; end the stream cleanly
				}
				return 0, err
			}
			s.cur, s.curBuf = c, c
		case <-s.ctx.Done():
			return 0, errNoLine
		case <-s.wake:
			return 0, errNoLine
		}
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}

// Next implements Source.
func (s *ReaderSource) Next(ctx context.Context, b *tokenwatch.Batch) error {
	a := s.arenas.get(b)
	a.reset()
	s.ctx, s.wake = ctx, nil
	defer func() { s.ctx, s.wake = nil, nil }()
	first := len(b.Records)
	ended := false
	nbytes := 0
	for len(b.Records)-first < s.lim.BatchSize && len(a.buf) < s.lim.BatchBytes {
		n0 := len(a.buf)
		buf, flags, err := s.lr.next(a.buf)
		a.buf = buf
		if err == nil {
			a.add(b, tokenwatch.Origin{Source: s.name, Partition: -1, Offset: s.lr.line}, s.kind, flags)
			nbytes += len(a.buf) - n0
			if flags&tokenwatch.FlagTruncated != 0 {
				metricTruncated.WithLabelValues(sourceType(s.name)).Inc()
			}
			if s.wake == nil {
				if s.timer == nil {
					s.timer = time.NewTimer(s.lim.FlushInterval)
				} else {
					s.timer.Reset(s.lim.FlushInterval)
				}
				s.wake = s.timer.C
			}
			continue
		}
		if err == errNoLine { // flush deadline or ctx
			break
		}
		ended = true // io.EOF (read errors were logged by the pump)
		break
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	a.finish(b, first)
	if n := len(b.Records) - first; n > 0 {
		metricRecords.WithLabelValues(sourceType(s.name)).Add(float64(n))
		metricBytes.WithLabelValues(sourceType(s.name)).Add(float64(nbytes))
		return nil
	}
	if ended {
		return io.EOF
	}
	return ctx.Err()
}

// Commit implements Source: it records the last line of b as processed.
func (s *ReaderSource) Commit(_ context.Context, b *tokenwatch.Batch) error {
	if n := len(b.Records); n > 0 {
		s.committed = b.Records[n-1].Offset
	}
	return nil
}

// Committed returns the last committed line number.
func (s *ReaderSource) Committed() int64 { return s.committed }

// Close implements Source. A pump blocked reading a stream that is not an
// io.Closer stays blocked until the stream yields; it holds no batch memory.
func (s *ReaderSource) Close() error {
	if s.closer != nil {
		return s.closer.Close()
	}
	return nil
}
