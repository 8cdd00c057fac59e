package pipeline_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/pipeline"
)

// Run reads a source to its end, passing each batch through the stages and
// committing it afterwards.
func ExampleRun() {
	src := ingest.NewReaderSource("-", strings.NewReader("first line\nsecond line\r\nthird line"), tokenwatch.KindApp, ingest.Limits{BatchSize: 2})
	defer src.Close()
	show := tokenwatch.StageFunc(func(_ context.Context, b *tokenwatch.Batch) error {
		for _, r := range b.Records {
			fmt.Printf("%s:%d %s\n", r.Source, r.Offset, r.Raw)
		}
		return nil
	})
	if err := pipeline.Run(context.Background(), src, []tokenwatch.Stage{show}); err != nil {
		fmt.Println("error:", err)
	}
	fmt.Println("committed up to line", src.Committed())
	// Output:
	// -:1 first line
	// -:2 second line
	// -:3 third line
	// committed up to line 3
}
