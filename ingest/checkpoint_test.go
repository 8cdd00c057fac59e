package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenwatch/tokenwatch"
)

// readBatches reads and commits up to n batches (all when n < 0).
func readBatches(t *testing.T, src Source, n int) []rec {
	t.Helper()
	ctx := context.Background()
	var out []rec
	b := &tokenwatch.Batch{}
	for i := 0; n < 0 || i < n; i++ {
		b.Reset()
		err := src.Next(ctx, b)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs(b)...)
		if err := src.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func numbered(prefix string, n int) string {
	var sb strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&sb, "%s-%d\n", prefix, i)
	}
	return sb.String()
}

// open a file source over path with the state file state.
func openWithState(t *testing.T, fc FileConfig, state string, lim Limits) *FileSource {
	t.Helper()
	cps, err := LoadCheckpoints(state)
	if err != nil {
		t.Fatal(err)
	}
	src, err := NewFileSource(fc, tokenwatch.KindApp, lim, WithCheckpoints(cps))
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestCheckpointResume(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state", "progress.json")
	if err := os.Mkdir(filepath.Dir(state), 0o700); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "logs", "a.log")
	gzPath := filepath.Join(dir, "logs", "b.log.gz")
	writeFile(t, plain, numbered("a", 100))
	writeFile(t, gzPath, gz(t, numbered("b", 50)))
	lim := Limits{BatchSize: 10}

	first := func(rs []rec) rec {
		t.Helper()
		if len(rs) == 0 {
			t.Fatal("no records")
		}
		return rs[0]
	}
	cases := []struct {
		name  string
		path  string
		after int // batches read in the first run
		want  rec // first record of the second run
		left  int // records in the second run
	}{
		{"plain file", plain, 3, rec{plain, 31, "a-31", 0}, 70},
		{"gzip file", gzPath, 2, rec{gzPath, 21, "b-21", 0}, 30},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(state)
			s1 := openWithState(t, FileConfig{Path: tc.path}, state, lim)
			readBatches(t, s1, tc.after)
			if err := s1.Close(); err != nil {
				t.Fatal(err)
			}
			s2 := openWithState(t, FileConfig{Path: tc.path}, state, lim)
			rs := readBatches(t, s2, -1)
			s2.Close()
			if got := first(rs); got != tc.want || len(rs) != tc.left {
				t.Fatalf("second run starts at %v with %d records; want %v and %d", got, len(rs), tc.want, tc.left)
			}
			s3 := openWithState(t, FileConfig{Path: tc.path}, state, lim)
			if rs := readBatches(t, s3, -1); len(rs) != 0 {
				t.Fatalf("third run read %d records of a finished file", len(rs))
			}
			s3.Close()
		})
	}

	t.Run("directory resumes each file", func(t *testing.T) {
		os.Remove(state)
		s1 := openWithState(t, FileConfig{Path: filepath.Join(dir, "logs")}, state, lim)
		readBatches(t, s1, 12) // all of a.log (10 batches) and 2 of b.log.gz
		s1.Close()
		s2 := openWithState(t, FileConfig{Path: filepath.Join(dir, "logs")}, state, lim)
		rs := readBatches(t, s2, -1)
		s2.Close()
		if first(rs) != (rec{gzPath, 21, "b-21", 0}) || len(rs) != 30 {
			t.Fatalf("second run: %d records from %v", len(rs), first(rs))
		}
	})

	t.Run("replaced file is read from the start", func(t *testing.T) {
		os.Remove(state)
		s1 := openWithState(t, FileConfig{Path: plain}, state, lim)
		readBatches(t, s1, 3)
		s1.Close()
		os.Remove(plain)
		writeFile(t, plain, numbered("new", 40)) // another inode
		s2 := openWithState(t, FileConfig{Path: plain}, state, lim)
		rs := readBatches(t, s2, -1)
		s2.Close()
		if first(rs) != (rec{plain, 1, "new-1", 0}) || len(rs) != 40 {
			t.Fatalf("second run: %d records from %v", len(rs), first(rs))
		}
	})

	t.Run("file truncated while away is read from the start", func(t *testing.T) {
		os.Remove(state)
		writeFile(t, plain, numbered("a", 100))
		s1 := openWithState(t, FileConfig{Path: plain}, state, lim)
		readBatches(t, s1, 5)
		s1.Close()
		if err := os.Truncate(plain, 0); err != nil {
			t.Fatal(err)
		}
		appendTo(t, plain, numbered("t", 3))
		s2 := openWithState(t, FileConfig{Path: plain}, state, lim)
		rs := readBatches(t, s2, -1)
		s2.Close()
		if first(rs) != (rec{plain, 1, "t-1", 0}) || len(rs) != 3 {
			t.Fatalf("second run: %d records from %v", len(rs), first(rs))
		}
	})

	t.Run("a cut line is replayed, never resumed mid-line", func(t *testing.T) {
		os.Remove(state)
		writeFile(t, plain, "one\n"+strings.Repeat("L", 100)+"\nthree\n")
		s1 := openWithState(t, FileConfig{Path: plain}, state, Limits{BatchSize: 2, MaxRecordBytes: 10})
		readBatches(t, s1, 1) // "one" and the cut line
		s1.Close()
		s2 := openWithState(t, FileConfig{Path: plain}, state, Limits{BatchSize: 2, MaxRecordBytes: 10})
		rs := readBatches(t, s2, -1)
		s2.Close()
		equalRecs(t, rs, []rec{{plain, 2, strings.Repeat("L", 10), tokenwatch.FlagTruncated}, {plain, 3, "three", 0}})
	})

	t.Run("a checkpoint wins over start_at end", func(t *testing.T) {
		os.Remove(state)
		writeFile(t, plain, numbered("a", 100))
		s1 := openWithState(t, FileConfig{Path: plain}, state, lim)
		readBatches(t, s1, 2)
		s1.Close()
		s2 := openWithState(t, FileConfig{Path: plain, Follow: true, StartAt: StartEnd}, state, lim)
		rs := readBatches(t, s2, 1)
		s2.Close()
		if first(rs) != (rec{plain, 21, "a-21", 0}) {
			t.Fatalf("followed file resumed at %v", first(rs))
		}
	})
}

func TestLoadCheckpointsErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state.json")
	os.WriteFile(p, []byte("not json"), 0o600)
	if _, err := LoadCheckpoints(p); err == nil || !strings.Contains(err.Error(), "delete it to start over") {
		t.Fatalf("err = %v", err)
	}
}
