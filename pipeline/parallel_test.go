package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/tokenwatch/tokenwatch"
)

func TestParallel(t *testing.T) {
	var calls atomic.Int32
	mark := tokenwatch.StageFunc(func(_ context.Context, b *tokenwatch.Batch) error {
		calls.Add(1)
		for i := range b.Records {
			r := &b.Records[i]
			r.Findings = append(r.Findings, tokenwatch.Finding{Rule: fmt.Sprintf("seen-%d", r.Offset)})
		}
		return nil
	})
	for _, tc := range []struct{ records, n, min, wantCalls int }{
		{1000, 4, 100, 4},
		{1001, 4, 100, 4},
		{10, 4, 100, 1}, // small batch: one call
		{1000, 1, 1, 1},
		{3, 4, 1, 1}, // fewer records than parts: one call
		{5, 4, 1, 4}, // uneven split, the last part empty
	} {
		calls.Store(0)
		b := &tokenwatch.Batch{}
		for i := range tc.records {
			b.Records = append(b.Records, tokenwatch.Record{Origin: tokenwatch.Origin{Offset: int64(i)}})
		}
		if err := Parallel(mark, tc.n, tc.min).Process(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		for i, r := range b.Records {
			if len(r.Findings) != 1 || r.Findings[0].Rule != fmt.Sprintf("seen-%d", i) {
				t.Fatalf("%+v: record %d findings %+v", tc, i, r.Findings)
			}
		}
		if int(calls.Load()) != tc.wantCalls {
			t.Errorf("%+v: %d calls, want %d", tc, calls.Load(), tc.wantCalls)
		}
	}
}

func TestParallelError(t *testing.T) {
	boom := errors.New("boom")
	st := tokenwatch.StageFunc(func(_ context.Context, b *tokenwatch.Batch) error {
		if len(b.Records) > 0 && b.Records[0].Offset >= 50 {
			return boom
		}
		return nil
	})
	b := &tokenwatch.Batch{Records: make([]tokenwatch.Record, 100)}
	for i := range b.Records {
		b.Records[i].Offset = int64(i)
	}
	if err := Parallel(st, 2, 1).Process(context.Background(), b); !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
}
