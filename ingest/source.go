package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/tokenwatch/tokenwatch"
)

// Source yields batches of records. Records' Raw bytes stay valid until the batch
// is passed to Commit or the next Next call on the same batch.
//
// Next calls come from one goroutine and Commit calls from one goroutine, in
// the order the batches were returned, but a Next and a Commit may run at the
// same time, and several batches may be outstanding (returned by Next, not yet
// committed): a source keeps each batch's records valid independently.
type Source interface {
	// Next fills b (already Reset) with up to the source's batch size of records,
	// blocking until at least one is available, the source's flush interval
	// passes with some records, ctx is done, or the source ends (io.EOF, with no
	// records). When ctx is done Next returns the records it already gathered
	// with a nil error, or ctx.Err() when it has none.
	Next(ctx context.Context, b *tokenwatch.Batch) error
	// Commit acknowledges every record of b: Kafka commits offsets (only the
	// highest per partition, never ahead of an unprocessed record); files record
	// progress. Called in the order batches were returned.
	Commit(ctx context.Context, b *tokenwatch.Batch) error
	Close() error
}

// arena holds the raw bytes of one batch of a file-like source. Lines are
// appended to buf while the batch fills; Raw slices are set only in finish, so
// a buf that grows never leaves a record pointing at a stale copy.
type arena struct {
	buf   []byte
	spans []int // end offset of each record in buf
	// marks are the files' progress in this batch (FileSource only).
	marks []fileMark
}

func (a *arena) reset() {
	a.buf = a.buf[:0]
	a.spans = a.spans[:0]
	a.marks = a.marks[:0]
}

// add appends a record whose bytes were just appended to a.buf.
func (a *arena) add(b *tokenwatch.Batch, o tokenwatch.Origin, kind tokenwatch.SourceKind, flags tokenwatch.RecordFlags) {
	r := appendRecord(b)
	r.Origin = o
	r.Kind = kind
	r.Flags = flags
	a.spans = append(a.spans, len(a.buf))
}

// finish points the batch's records (from index first) at their bytes.
func (a *arena) finish(b *tokenwatch.Batch, first int) {
	if len(b.Records)-first != len(a.spans) {
		panic("BUG: arena spans do not match the batch's records")
	}
	start := 0
	for i, end := range a.spans {
		b.Records[first+i].Raw = a.buf[start:end:end]
		start = end
	}
}

// appendRecord extends b.Records by one, reusing the Findings capacity left in
// place by Batch.Reset, and returns the new record.
func appendRecord(b *tokenwatch.Batch) *tokenwatch.Record {
	n := len(b.Records)
	if n < cap(b.Records) {
		b.Records = b.Records[:n+1]
	} else {
		b.Records = append(b.Records, tokenwatch.Record{})
	}
	return &b.Records[n]
}

// arenas maps batches to their arenas. Batches are pooled by the pipeline, so
// the map stays as small as the pool.
type arenas struct {
	mu sync.Mutex
	m  map[*tokenwatch.Batch]*arena
}

func (s *arenas) get(b *tokenwatch.Batch) *arena {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[*tokenwatch.Batch]*arena)
	}
	a := s.m[b]
	if a == nil {
		a = &arena{}
		s.m[b] = a
	}
	return a
}

// Multi merges several sources into one. Each source is read by a goroutine of
// its own, a bounded number of batches ahead; Next hands out whichever batch is
// ready first and Commit routes the acknowledgement back to the source that
// produced it, in that source's order. Multi ends (io.EOF) when every source
// has ended.
type Multi struct {
	srcs   []Source
	ready  chan multiItem
	free   []chan *tokenwatch.Batch
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	pending []multiItem // handed out by Next, not yet committed, in order
	live    int         // sources that have not ended
	once    sync.Once
}

type multiItem struct {
	src   int
	sub   *tokenwatch.Batch
	outer *tokenwatch.Batch
	err   error
}

// NewMulti starts reading srcs; ahead is how many batches each source may read
// before the earliest of them is committed (at least 1).
func NewMulti(srcs []Source, ahead int) *Multi {
	if ahead < 1 {
		ahead = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Multi{srcs: srcs, ready: make(chan multiItem), ctx: ctx, cancel: cancel, live: len(srcs)}
	for range srcs {
		free := make(chan *tokenwatch.Batch, ahead)
		for range ahead {
			free <- &tokenwatch.Batch{}
		}
		m.free = append(m.free, free)
	}
	return m
}

func (m *Multi) start() {
	m.wg.Add(len(m.srcs))
	for i, s := range m.srcs {
		go m.read(i, s)
	}
}

func (m *Multi) read(i int, s Source) {
	defer m.wg.Done()
	for {
		var sb *tokenwatch.Batch
		select {
		case sb = <-m.free[i]:
		case <-m.ctx.Done():
			return
		}
		sb.Reset()
		err := s.Next(m.ctx, sb)
		if err != nil && m.ctx.Err() != nil {
			return
		}
		item := multiItem{src: i, sub: sb, err: err}
		if err != nil {
			item.sub = nil
		}
		select {
		case m.ready <- item:
		case <-m.ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// Next implements Source.
func (m *Multi) Next(ctx context.Context, b *tokenwatch.Batch) error {
	m.once.Do(m.start)
	for {
		m.mu.Lock()
		live := m.live
		m.mu.Unlock()
		if live == 0 {
			return io.EOF
		}
		var it multiItem
		select {
		case it = <-m.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		if it.err != nil {
			m.mu.Lock()
			m.live--
			m.mu.Unlock()
			if errors.Is(it.err, io.EOF) {
				continue
			}
			return fmt.Errorf("source %d: %w", it.src, it.err)
		}
		for j := range it.sub.Records {
			r := appendRecord(b)
			f := r.Findings[:0]
			*r = it.sub.Records[j]
			r.Findings = append(f, it.sub.Records[j].Findings...)
		}
		it.outer = b
		m.mu.Lock()
		m.pending = append(m.pending, it)
		m.mu.Unlock()
		return nil
	}
}

// Commit implements Source.
func (m *Multi) Commit(ctx context.Context, b *tokenwatch.Batch) error {
	m.mu.Lock()
	if len(m.pending) == 0 || m.pending[0].outer != b {
		m.mu.Unlock()
		panic("BUG: Multi.Commit called out of order")
	}
	it := m.pending[0]
	m.mu.Unlock()
	if err := m.srcs[it.src].Commit(ctx, it.sub); err != nil {
		return err
	}
	m.mu.Lock()
	m.pending = m.pending[1:]
	m.mu.Unlock()
	it.sub.Reset()
	m.free[it.src] <- it.sub
	return nil
}

// Close stops the readers, waits for them to return from Next (every source
// honours ctx), then closes every source. Batches read ahead but not handed out
// are dropped uncommitted.
func (m *Multi) Close() error {
	m.cancel()
	m.wg.Wait()
	var errs []error
	for _, s := range m.srcs {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
