package pipeline

import (
	"context"

	"github.com/tokenwatch/tokenwatch"
)

// Chain returns a Stage that runs stages in order on each batch and stops at
// the first error, which it returns unchanged (stages wrap their own errors
// with context). Nil stages are skipped. It is the way to hand several stages
// to something that takes one sink Stage (anomaly.Owner).
//
// Chain adds no locking: the chained stage is safe for concurrent Process
// calls exactly when every stage in it is.
func Chain(stages ...tokenwatch.Stage) tokenwatch.Stage {
	c := make(chain, 0, len(stages))
	for _, s := range stages {
		if s != nil {
			c = append(c, s)
		}
	}
	return c
}

type chain []tokenwatch.Stage

// Process implements tokenwatch.Stage.
func (c chain) Process(ctx context.Context, b *tokenwatch.Batch) error {
	for _, s := range c {
		if err := s.Process(ctx, b); err != nil {
			return err
		}
	}
	return nil
}
