package scenario

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/tokenwatch/tokenwatch"
	"github.com/tokenwatch/tokenwatch/ingest/parse"
)

// ReplaySource plays a generated scenario back as live traffic: the records of
// all its files merged in event-time order, the way near-real-time Kafka topics
// deliver them, in batches. It implements ingest.Source. Each record keeps its
// true origin (file and 1-based line) and the source kind of its file.
//
// (tokenwatch run over the same files reads each file at its own pace; the
// anomaly engine's out-of-order tolerance absorbs that, but a replay in event
// order makes the demo deterministic.)
type ReplaySource struct {
	recs  []tokenwatch.Record
	next  int
	batch int
	bytes int64
}

// OpenReplay loads the scenario in dir. batch is the number of records per batch.
func OpenReplay(dir string, batch int) (*ReplaySource, error) {
	if batch <= 0 {
		batch = 1024
	}
	s := &ReplaySource{batch: batch}
	type timed struct {
		t   time.Time
		rec tokenwatch.Record
	}
	var all []timed
	for _, f := range []struct {
		name string
		kind tokenwatch.SourceKind
	}{{FileRevocations, tokenwatch.KindRevocation}, {FileNginx, tokenwatch.KindAuth}, {FileEnvoy, tokenwatch.KindAuth}, {FileApp, tokenwatch.KindApp}} {
		path := filepath.Join(dir, f.name)
		fh, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		var last time.Time
		for line := int64(1); sc.Scan(); line++ {
			raw := append([]byte(nil), sc.Bytes()...)
			if t, ok := lineTime(raw); ok {
				last = t
			}
			// Lines without a time (stack-trace continuations) stay with
			// the line before them.
			all = append(all, timed{last, tokenwatch.Record{Origin: tokenwatch.Origin{Source: path, Partition: -1, Offset: line}, Raw: raw, Kind: f.kind}})
			s.bytes += int64(len(raw))
		}
		err = sc.Err()
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("replay %s: %w", path, err)
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].t.Before(all[j].t) })
	s.recs = make([]tokenwatch.Record, len(all))
	for i := range all {
		s.recs[i] = all[i].rec
	}
	return s, nil
}

// lineTime finds the first RFC 3339 timestamp in a generated line.
func lineTime(b []byte) (time.Time, bool) {
	for i := 0; i+20 <= len(b); i++ {
		if b[i] == '2' && b[i+1] == '0' && b[i+4] == '-' && b[i+7] == '-' && b[i+10] == 'T' {
			end := i + 19
			for end < len(b) && end < i+35 && b[end] != '"' && b[end] != ' ' && b[end] != ',' {
				end++
			}
			return parse.ParseTime(b[i:end], time.UTC)
		}
	}
	return time.Time{}, false
}

// Len is the number of records; Bytes their total size.
func (s *ReplaySource) Len() int     { return len(s.recs) }
func (s *ReplaySource) Bytes() int64 { return s.bytes }

// Next fills b with the next batch of records; io.EOF at the end.
func (s *ReplaySource) Next(ctx context.Context, b *tokenwatch.Batch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.next >= len(s.recs) {
		return io.EOF
	}
	end := min(s.next+s.batch, len(s.recs))
	for _, r := range s.recs[s.next:end] {
		// Reuse the pooled record's findings capacity (Batch.Reset keeps it).
		n := len(b.Records)
		if n < cap(b.Records) {
			b.Records = b.Records[:n+1]
			f := b.Records[n].Findings[:0]
			b.Records[n] = tokenwatch.Record{Origin: r.Origin, Raw: r.Raw, Kind: r.Kind, Findings: f}
		} else {
			b.Records = append(b.Records, tokenwatch.Record{Origin: r.Origin, Raw: r.Raw, Kind: r.Kind})
		}
	}
	s.next = end
	return nil
}

// Commit has nothing to acknowledge: the records are in memory.
func (s *ReplaySource) Commit(context.Context, *tokenwatch.Batch) error { return nil }

// Close releases the records.
func (s *ReplaySource) Close() error { s.recs = nil; return nil }
