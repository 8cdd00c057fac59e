package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// memSource yields n records in batches of size, and records every commit.
type memSource struct {
	mu        sync.Mutex
	n, size   int
	next      int
	committed []int64 // last offset of each committed batch, in commit order
	issued    []int64 // last offset of each batch handed out
	nextErr   error   // returned once by Next, after the records
	block     bool    // after the records, block until ctx is done
	raw       [][]byte
	// commitFail makes Commit fail for batches whose last offset is >= it.
	commitFail int64
	commitErr  error
}

func newMemSource(n, size int) *memSource {
	s := &memSource{n: n, size: size}
	for i := range n {
		s.raw = append(s.raw, []byte(fmt.Sprintf("record %d", i)))
	}
	return s
}

func (s *memSource) Next(ctx context.Context, b *tokenwatch.Batch) error {
	s.mu.Lock()
	if s.next >= s.n {
		err, block := s.nextErr, s.block
		s.nextErr = nil
		s.mu.Unlock()
		if err != nil {
			return err
		}
		if block {
			<-ctx.Done()
			return ctx.Err()
		}
		return io.EOF
	}
	defer s.mu.Unlock()
	for i := 0; i < s.size && s.next < s.n; i++ {
		b.Records = append(b.Records, tokenwatch.Record{
			Origin: tokenwatch.Origin{Source: "mem", Partition: 0, Offset: int64(s.next)},
			Raw:    s.raw[s.next], Kind: tokenwatch.KindApp,
		})
		s.next++
	}
	s.issued = append(s.issued, int64(s.next-1))
	return nil
}

func (s *memSource) Commit(_ context.Context, b *tokenwatch.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.commitErr != nil && b.Records[len(b.Records)-1].Offset >= s.commitFail {
		return s.commitErr
	}
	s.committed = append(s.committed, b.Records[len(b.Records)-1].Offset)
	return nil
}

func (s *memSource) Close() error { return nil }

func (s *memSource) commits() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.committed...)
}

// recorder is a stage that notes every record it saw, and checks that nothing
// it saw was committed before it saw it.
type recorder struct {
	mu   sync.Mutex
	src  *memSource
	seen []int64
	// fail makes Process fail while fail(batchIndex, attempt) returns an error.
	fail     func(batch, attempt int) error
	batches  int
	attempts map[int]int
	delay    time.Duration
}

func (r *recorder) Process(ctx context.Context, b *tokenwatch.Batch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := b.Records[0].Offset
	if r.attempts == nil {
		r.attempts = map[int]int{}
	}
	idx := int(first) / r.src.size
	r.attempts[idx]++
	if r.fail != nil {
		if err := r.fail(idx, r.attempts[idx]); err != nil {
			return err
		}
	}
	if r.delay > 0 {
		time.Sleep(r.delay)
	}
	for _, c := range r.src.commits() {
		if c >= first {
			panic(fmt.Sprintf("offset %d committed before stage saw batch starting at %d", c, first))
		}
	}
	for _, rec := range b.Records {
		r.seen = append(r.seen, rec.Offset)
	}
	r.batches++
	return nil
}

func noSleep(context.Context, time.Duration) bool { return true }

func TestRunOrderAndCommit(t *testing.T) {
	for _, inFlight := range []int{1, 2, 8} {
		t.Run(fmt.Sprint("in_flight=", inFlight), func(t *testing.T) {
			src := newMemSource(1000, 7)
			st := &recorder{src: src, delay: 100 * time.Microsecond}
			cfg := DefaultConfig()
			cfg.InFlight = inFlight
			if err := Run(context.Background(), src, []tokenwatch.Stage{st}, WithConfig(cfg)); err != nil {
				t.Fatal(err)
			}
			if len(st.seen) != 1000 {
				t.Fatalf("saw %d records, want 1000", len(st.seen))
			}
			for i, o := range st.seen {
				if o != int64(i) {
					t.Fatalf("record %d has offset %d: out of order", i, o)
				}
			}
			c := src.commits()
			if len(c) != len(src.issued) {
				t.Fatalf("%d commits for %d batches", len(c), len(src.issued))
			}
			for i := range c {
				if c[i] != src.issued[i] {
					t.Fatalf("commit %d = %d, want %d (in order)", i, c[i], src.issued[i])
				}
			}
		})
	}
}

func TestRunRetry(t *testing.T) {
	src := newMemSource(30, 10)
	var sleeps []time.Duration
	st := &recorder{src: src, fail: func(batch, attempt int) error {
		if batch == 1 && attempt <= 3 {
			return errors.New("sink down")
		}
		return nil
	}}
	cfg := DefaultConfig()
	cfg.Retry = RetryConfig{MaxAttempts: 5, InitialBackoff: time.Millisecond, MaxBackoff: 3 * time.Millisecond}
	sleep := func(_ context.Context, d time.Duration) bool { sleeps = append(sleeps, d); return true }
	if err := Run(context.Background(), src, []tokenwatch.Stage{st}, WithConfig(cfg), withSleep(sleep)); err != nil {
		t.Fatal(err)
	}
	if len(st.seen) != 30 || st.attempts[1] != 4 {
		t.Fatalf("saw %d records, batch 1 attempts %d; want 30 and 4", len(st.seen), st.attempts[1])
	}
	want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}
	if fmt.Sprint(sleeps) != fmt.Sprint(want) {
		t.Errorf("backoffs %v, want %v", sleeps, want)
	}
}

// A later stage failing is retried alone: earlier stages are not re-run.
func TestRunRetryFromFailingStage(t *testing.T) {
	src := newMemSource(5, 5)
	first := 0
	second := 0
	stages := []tokenwatch.Stage{
		tokenwatch.StageFunc(func(context.Context, *tokenwatch.Batch) error { first++; return nil }),
		tokenwatch.StageFunc(func(context.Context, *tokenwatch.Batch) error {
			second++
			if second < 3 {
				return errors.New("transient")
			}
			return nil
		}),
	}
	if err := Run(context.Background(), src, stages, withSleep(noSleep)); err != nil {
		t.Fatal(err)
	}
	if first != 1 || second != 3 {
		t.Fatalf("first stage ran %d times, second %d; want 1 and 3", first, second)
	}
}

func TestRunFailureStopsWithoutCommit(t *testing.T) {
	cases := []struct {
		name     string
		err      error
		attempts int
	}{
		{"permanent error is not retried", Permanent(errors.New("bad schema")), 1},
		{"Retryable() false is not retried", notRetryable{}, 1},
		{"retries exhausted", errors.New("still down"), 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := newMemSource(50, 10)
			st := &recorder{src: src, fail: func(batch, _ int) error {
				if batch == 2 {
					return tc.err
				}
				return nil
			}}
			cfg := DefaultConfig()
			cfg.Retry.MaxAttempts = 3
			err := Run(context.Background(), src, []tokenwatch.Stage{st}, WithConfig(cfg), withSleep(noSleep))
			if err == nil || !errors.Is(err, tc.err) {
				t.Fatalf("Run = %v, want %v", err, tc.err)
			}
			if st.attempts[2] != tc.attempts {
				t.Errorf("batch 2 attempted %d times, want %d", st.attempts[2], tc.attempts)
			}
			if c := src.commits(); len(c) != 2 || c[1] != 19 {
				t.Fatalf("commits %v, want [9 19]: nothing at or after the failed batch", c)
			}
		})
	}
}

// A commit that fails for good stops the pipeline; no later batch is committed
// even though the stages went on with it during the failed commit.
func TestRunCommitFailure(t *testing.T) {
	src := newMemSource(100, 10)
	want := Permanent(errors.New("coordinator gone"))
	src.commitFail, src.commitErr = 25, want
	st := &recorder{src: src}
	err := Run(context.Background(), src, []tokenwatch.Stage{st}, withSleep(noSleep))
	if !errors.Is(err, want) {
		t.Fatalf("Run = %v", err)
	}
	if c := src.commits(); len(c) != 2 || c[1] != 19 {
		t.Fatalf("commits %v, want [9 19]", c)
	}
}

type notRetryable struct{}

func (notRetryable) Error() string   { return "invalid" }
func (notRetryable) Retryable() bool { return false }

func TestRunSourceError(t *testing.T) {
	src := newMemSource(10, 5)
	want := errors.New("broker unreachable")
	src.nextErr = want
	st := &recorder{src: src}
	err := Run(context.Background(), src, []tokenwatch.Stage{st})
	if err == nil || !errors.Is(err, want) {
		t.Fatalf("Run = %v", err)
	}
	if len(src.commits()) != 2 {
		t.Fatalf("commits %v, want both batches read before the error", src.commits())
	}
}

// On cancel, batches already read are processed and committed, and Run returns nil.
func TestRunGracefulShutdown(t *testing.T) {
	src := newMemSource(40, 10)
	src.block = true
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	n := 0
	stage := tokenwatch.StageFunc(func(sctx context.Context, b *tokenwatch.Batch) error {
		mu.Lock()
		n += len(b.Records)
		if n == 10 {
			cancel() // SIGTERM while the first batch is in the stages
		}
		mu.Unlock()
		if sctx.Err() != nil {
			return sctx.Err() // stages must see a live context during the drain
		}
		return nil
	})
	if err := Run(ctx, src, []tokenwatch.Stage{stage}); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	c := src.commits()
	if len(c) == 0 || c[len(c)-1] != src.issued[len(src.issued)-1] {
		t.Fatalf("commits %v, issued %v: every batch read must be committed", c, src.issued)
	}
}

// A stage stuck past the shutdown timeout makes Run return an error.
func TestRunShutdownTimeout(t *testing.T) {
	src := newMemSource(10, 10)
	ctx, cancel := context.WithCancel(context.Background())
	stage := tokenwatch.StageFunc(func(sctx context.Context, b *tokenwatch.Batch) error {
		cancel()
		<-sctx.Done()
		return sctx.Err()
	})
	cfg := DefaultConfig()
	cfg.ShutdownTimeout = 20 * time.Millisecond
	err := Run(ctx, src, []tokenwatch.Stage{stage}, WithConfig(cfg))
	if err == nil || len(src.commits()) != 0 {
		t.Fatalf("Run = %v, commits %v; want an error and no commit", err, src.commits())
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	c := Config{InFlight: 0, Retry: RetryConfig{MaxAttempts: 0, InitialBackoff: 0, MaxBackoff: -1}}
	err := c.Validate()
	for _, want := range []string{"pipeline.in_flight", "pipeline.retry.max_attempts", "pipeline.retry.initial_backoff", "pipeline.retry.max_backoff", "pipeline.shutdown_timeout"} {
		if err == nil || !contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want a message about %s", err, want)
		}
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func BenchmarkRun(b *testing.B) {
	const n = 1 << 16
	src := newMemSource(n, 1024)
	b.SetBytes(int64(n * len("record 12345")))
	b.ReportAllocs()
	for b.Loop() {
		src.next = 0
		src.committed, src.issued = src.committed[:0], src.issued[:0]
		if err := Run(context.Background(), src, []tokenwatch.Stage{tokenwatch.StageFunc(func(context.Context, *tokenwatch.Batch) error { return nil })}); err != nil {
			b.Fatal(err)
		}
	}
}
