package detect

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// Scanner finds credentials in log lines. It is safe for concurrent use after New.
type Scanner struct {
	key    []byte
	maxTok int
	now    func() time.Time

	macs    sync.Pool // hash.Hash (HMAC-SHA256 under key)
	scratch sync.Pool // *scratch
}

type options struct {
	key    []byte
	maxTok int
	now    func() time.Time
}

// Option configures a Scanner.
type Option func(*options)

// WithKey sets the fingerprint HMAC key. Without it New generates a random key,
// so fingerprints are stable only within the process; use LoadKey for a stable one.
func WithKey(key []byte) Option {
	return func(o *options) { o.key = append([]byte(nil), key...) }
}

// WithMaxTokenLen sets the longest credential reported, in bytes (default 16384).
func WithMaxTokenLen(n int) Option { return func(o *options) { o.maxTok = n } }

// WithNow sets the clock used for the JWT "expired" flag (default time.Now).
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// New returns a Scanner.
func New(opts ...Option) (*Scanner, error) {
	o := options{maxTok: DefaultMaxTokenLen, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxTok < 64 || o.maxTok > 1<<20 {
		return nil, fmt.Errorf("detect: max token length %d out of range [64, 1048576]", o.maxTok)
	}
	if o.now == nil {
		return nil, errors.New("detect: WithNow(nil)")
	}
	if o.key == nil {
		o.key = make([]byte, 32)
		if _, err := rand.Read(o.key); err != nil {
			return nil, fmt.Errorf("detect: generate fingerprint key: %w", err)
		}
	} else if len(o.key) < MinKeyLen {
		return nil, fmt.Errorf("detect: fingerprint key is %d bytes, want at least %d", len(o.key), MinKeyLen)
	}
	s := &Scanner{key: o.key, maxTok: o.maxTok, now: o.now}
	s.macs.New = func() any { return hmac.New(sha256.New, s.key) }
	s.scratch.New = func() any { return new(scratch) }
	return s, nil
}

// Fingerprint returns HMAC-SHA256(key, token)[:16] (DESIGN.md contract). token is
// the exact, decoded credential string.
func (s *Scanner) Fingerprint(token []byte) tokenwatch.Fingerprint {
	m := s.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(token)
	var sum [sha256.Size]byte
	m.Sum(sum[:0])
	s.macs.Put(m)
	var f tokenwatch.Fingerprint
	copy(f[:], sum[:])
	return f
}

// Scan appends the findings in line to dst and returns it. It allocates nothing
// when line has no finding. Start/End are byte offsets in line of the credential
// value only; for an encoded credential they cover the encoded span, while the
// fingerprint and preview are computed over the decoded value. Findings are in
// line order and do not overlap. Scan does not retain line.
func (s *Scanner) Scan(line []byte, dst []tokenwatch.Finding) []tokenwatch.Finding {
	st := scanState{s: s, line: line, dst: dst, base: len(dst)}
	st.run()
	if st.sc != nil {
		st.sc.reset()
		s.scratch.Put(st.sc)
	}
	return st.dst
}

// processCheckEvery is how many records Process scans between context checks.
const processCheckEvery = 256

// Process implements tokenwatch.Stage: it scans every Record.Raw of b into
// Record.Findings (replacing what was there). Revocation records
// (KindRevocation) are events, not logs, and are not scanned. It returns
// ctx.Err() if the context is cancelled mid-batch.
func (s *Scanner) Process(ctx context.Context, b *tokenwatch.Batch) error {
	records, size := 0, 0
	defer func() {
		metricRecords.Add(float64(records))
		metricBytes.Add(float64(size))
	}()
	for i := range b.Records {
		if i%processCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("detect: scan batch: %w", err)
			}
		}
		r := &b.Records[i]
		clear(r.Findings)
		r.Findings = r.Findings[:0]
		if r.Kind == tokenwatch.KindRevocation {
			continue
		}
		r.Findings = s.Scan(r.Raw, r.Findings)
		records++
		size += len(r.Raw)
		for j := range r.Findings {
			findingsByKind[r.Findings[j].Kind].Inc()
		}
	}
	return nil
}

var _ tokenwatch.Stage = (*Scanner)(nil)

func sleepShort() { time.Sleep(20 * time.Millisecond) }
