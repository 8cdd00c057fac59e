package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/tokenwatch/tokenwatch"
)

func TestChain(t *testing.T) {
	boom := errors.New("boom")
	var (
		mu   sync.Mutex
		seen []string
	)
	stage := func(name string, err error) tokenwatch.Stage {
		return tokenwatch.StageFunc(func(_ context.Context, b *tokenwatch.Batch) error {
			mu.Lock()
			seen = append(seen, name)
			mu.Unlock()
			b.Alerts = append(b.Alerts, tokenwatch.Alert{Type: name})
			return err
		})
	}
	for name, tc := range map[string]struct {
		stages  []tokenwatch.Stage
		want    []string
		wantErr error
	}{
		"empty":                    {nil, nil, nil},
		"order":                    {[]tokenwatch.Stage{stage("a", nil), stage("b", nil), stage("c", nil)}, []string{"a", "b", "c"}, nil},
		"nil stages skipped":       {[]tokenwatch.Stage{nil, stage("a", nil), nil, stage("b", nil)}, []string{"a", "b"}, nil},
		"stops at the first error": {[]tokenwatch.Stage{stage("a", nil), stage("b", boom), stage("c", nil)}, []string{"a", "b"}, boom},
	} {
		t.Run(name, func(t *testing.T) {
			seen = nil
			b := &tokenwatch.Batch{}
			err := Chain(tc.stages...).Process(context.Background(), b)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if !slices.Equal(seen, tc.want) {
				t.Errorf("stages ran %v, want %v", seen, tc.want)
			}
			// Each stage saw the previous stages' work on the same batch.
			var types []string
			for _, a := range b.Alerts {
				types = append(types, a.Type)
			}
			if !slices.Equal(types, tc.want) {
				t.Errorf("batch alerts %v, want %v", types, tc.want)
			}
		})
	}
}

// Chain adds no state of its own: concurrent calls with concurrency-safe
// stages work on their own batches (run with -race).
func TestChainConcurrent(t *testing.T) {
	inc := tokenwatch.StageFunc(func(_ context.Context, b *tokenwatch.Batch) error {
		b.Alerts = append(b.Alerts, tokenwatch.Alert{ID: strconv.Itoa(len(b.Alerts) + 1)})
		return nil
	})
	c := Chain(inc, inc, inc)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				b := &tokenwatch.Batch{}
				if err := c.Process(context.Background(), b); err != nil {
					errs <- err
					return
				}
				if len(b.Alerts) != 3 || b.Alerts[2].ID != "3" {
					errs <- errors.New("a batch did not go through every stage once")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func ExampleChain() {
	tag := func(s string) tokenwatch.Stage {
		return tokenwatch.StageFunc(func(_ context.Context, b *tokenwatch.Batch) error {
			b.Alerts = append(b.Alerts, tokenwatch.Alert{Type: s})
			return nil
		})
	}
	b := &tokenwatch.Batch{}
	_ = Chain(tag("policy"), tag("store"), tag("outbox")).Process(context.Background(), b)
	for _, a := range b.Alerts {
		fmt.Println(a.Type)
	}
	// Output:
	// policy
	// store
	// outbox
}

// Chain is on every batch's path in an owner: it must not allocate.
func TestChainAllocs(t *testing.T) {
	nop := tokenwatch.StageFunc(func(context.Context, *tokenwatch.Batch) error { return nil })
	c := Chain(nop, nop, nop)
	b := &tokenwatch.Batch{}
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { _ = c.Process(ctx, b) }); n != 0 {
		t.Errorf("Chain.Process allocates %.0f times per batch, want 0", n)
	}
}

func BenchmarkChain(b *testing.B) {
	nop := tokenwatch.StageFunc(func(context.Context, *tokenwatch.Batch) error { return nil })
	c := Chain(nop, nop, nop)
	batch := &tokenwatch.Batch{Records: make([]tokenwatch.Record, 1), Uses: make([]tokenwatch.TokenUse, 1)}
	batch.Records[0].Raw = make([]byte, 512)
	ctx := context.Background()
	b.SetBytes(int64(batch.Bytes()))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Process(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}
