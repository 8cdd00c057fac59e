package pipeline

import (
	"context"
	"sync"

	"github.com/tokenwatch/tokenwatch"
)

// Parallel returns a Stage that runs s on n disjoint slices of each batch's
// Records at the same time, for stages that work on each record on its own
// and are safe for concurrent use (the scanner: detect.Scanner). The parts see
// a Batch holding only their Records (no Uses, Alerts or Revocations) and must
// not append or remove records. Batches of fewer than minRecords records, or
// n <= 1, run s directly.
func Parallel(s tokenwatch.Stage, n, minRecords int) tokenwatch.Stage {
	if n <= 1 {
		return s
	}
	return &parallel{s: s, n: n, min: max(minRecords, n), parts: make([]tokenwatch.Batch, n), errs: make([]error, n)}
}

type parallel struct {
	s     tokenwatch.Stage
	n     int
	min   int
	mu    sync.Mutex // one batch at a time: parts and errs are reused
	parts []tokenwatch.Batch
	errs  []error
}

// Process implements tokenwatch.Stage. It returns the first part's error.
func (p *parallel) Process(ctx context.Context, b *tokenwatch.Batch) error {
	recs := b.Records
	if len(recs) < p.min {
		return p.s.Process(ctx, b)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var wg sync.WaitGroup
	per := (len(recs) + p.n - 1) / p.n
	for i := range p.n {
		lo, hi := min(i*per, len(recs)), min((i+1)*per, len(recs))
		part := &p.parts[i]
		part.Records = recs[lo:hi:hi] // full slice expression: an append cannot spill into a neighbour
		p.errs[i] = nil
		if i == p.n-1 {
			p.errs[i] = p.s.Process(ctx, part) // the last part on this goroutine
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.errs[i] = p.s.Process(ctx, part)
		}()
	}
	wg.Wait()
	for i := range p.parts {
		p.parts[i].Records = nil // do not retain the batch
	}
	for _, err := range p.errs {
		if err != nil {
			return err
		}
	}
	return nil
}
