package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// rec is the comparable view of a record in tests.
type rec struct {
	src   string
	line  int64
	text  string
	flags tokenwatch.RecordFlags
}

func (r rec) String() string { return fmt.Sprintf("%s:%d %q %v", r.src, r.line, r.text, r.flags) }

// drain reads src to io.EOF, committing every batch, and returns every record.
func drain(t *testing.T, src Source) []rec {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []rec
	b := &tokenwatch.Batch{}
	for {
		b.Reset()
		err := src.Next(ctx, b)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		out = append(out, recs(b)...)
		if err := src.Commit(ctx, b); err != nil {
			t.Fatalf("Commit: %v", err)
		}
	}
}

func recs(b *tokenwatch.Batch) []rec {
	var out []rec
	for _, r := range b.Records {
		if r.Partition != -1 {
			panic("file record with a partition")
		}
		out = append(out, rec{r.Source, r.Offset, string(r.Raw), r.Flags})
	}
	return out
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func gz(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func equalRecs(t *testing.T, got, want []rec) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records:\n%v\nwant %d:\n%v", len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("record %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestFileSource(t *testing.T) {
	dir := t.TempDir()
	T := tokenwatch.FlagTruncated
	long := strings.Repeat("L", 50)
	writeFile(t, filepath.Join(dir, "plain.log"), "a1\r\na2\n\na4")
	writeFile(t, filepath.Join(dir, "logs", "b.log.gz"), gz(t, "gz1\ngz2\n"))
	writeFile(t, filepath.Join(dir, "logs", "a.log"), "first\n"+long+"\nthird\n")
	writeFile(t, filepath.Join(dir, "logs", "c.bin"), "text\x00binary\n")
	writeFile(t, filepath.Join(dir, "logs", "sub", "z.log"), "deep\n")
	lim := Limits{MaxRecordBytes: 20, BatchSize: 2}

	p := func(rel string) string { return filepath.Join(dir, rel) }
	cases := []struct {
		name string
		path string
		want []rec
	}{
		{"plain file with crlf, empty line, no final newline", "plain.log", []rec{
			{p("plain.log"), 1, "a1", 0}, {p("plain.log"), 2, "a2", 0}, {p("plain.log"), 3, "", 0}, {p("plain.log"), 4, "a4", 0},
		}},
		{"gzip by magic bytes", "logs/b.log.gz", []rec{{p("logs/b.log.gz"), 1, "gz1", 0}, {p("logs/b.log.gz"), 2, "gz2", 0}}},
		{"directory: recursive, sorted, binary skipped, long line cut", "logs", []rec{
			{p("logs/a.log"), 1, "first", 0},
			{p("logs/a.log"), 2, long[:20], T},
			{p("logs/a.log"), 3, "third", 0},
			{p("logs/b.log.gz"), 1, "gz1", 0},
			{p("logs/b.log.gz"), 2, "gz2", 0},
			{p("logs/sub/z.log"), 1, "deep", 0},
		}},
		{"binary file named explicitly is read", "logs/c.bin", []rec{{p("logs/c.bin"), 1, "text\x00binary", 0}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src, err := NewFileSource(FileConfig{Path: p(tc.path)}, tokenwatch.KindApp, lim)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			equalRecs(t, drain(t, src), tc.want)
			last := tc.want[len(tc.want)-1]
			if got := src.Progress()[last.src]; got != last.line {
				t.Errorf("progress of %s = %d, want %d", last.src, got, last.line)
			}
		})
	}
}

func TestFileSourceMissing(t *testing.T) {
	_, err := NewFileSource(FileConfig{Path: filepath.Join(t.TempDir(), "nope.log")}, tokenwatch.KindApp, Limits{})
	if err == nil || !strings.Contains(err.Error(), "nope.log") {
		t.Fatalf("err = %v, want one naming the path", err)
	}
}

// Records stay valid until their batch is committed, while later batches are read.
func TestFileSourceBatchesIndependent(t *testing.T) {
	dir := t.TempDir()
	var sb strings.Builder
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(&sb, "line-%03d\n", i)
	}
	writeFile(t, filepath.Join(dir, "f.log"), sb.String())
	src, err := NewFileSource(FileConfig{Path: filepath.Join(dir, "f.log")}, tokenwatch.KindAuth, Limits{BatchSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var batches []*tokenwatch.Batch
	for {
		b := &tokenwatch.Batch{}
		if err := src.Next(ctx, b); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		batches = append(batches, b)
	}
	n := 0
	for _, b := range batches {
		for _, r := range b.Records {
			n++
			if want := fmt.Sprintf("line-%03d", n); string(r.Raw) != want || r.Offset != int64(n) || r.Kind != tokenwatch.KindAuth {
				t.Fatalf("record %d = %q line %d kind %v", n, r.Raw, r.Offset, r.Kind)
			}
		}
	}
	if n != 100 || len(batches) != 15 {
		t.Fatalf("%d records in %d batches, want 100 in 15", n, len(batches))
	}
}

// follower reads from a follow-mode source in the background.
type follower struct {
	t      *testing.T
	src    *FileSource
	recs   chan rec
	cancel context.CancelFunc
	done   chan error
}

func startFollow(t *testing.T, fc FileConfig) *follower {
	fc.Follow = true
	src, err := NewFileSource(fc, tokenwatch.KindAuth, Limits{PollInterval: 5 * time.Millisecond, FlushInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{t: t, src: src, recs: make(chan rec, 1000), cancel: cancel, done: make(chan error, 1)}
	go func() {
		b := &tokenwatch.Batch{}
		for {
			b.Reset()
			err := src.Next(ctx, b)
			if err != nil {
				f.done <- err
				return
			}
			for _, r := range recs(b) {
				f.recs <- r
			}
			_ = src.Commit(ctx, b)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-f.done
		src.Close()
	})
	return f
}

// expect waits (polling with a deadline) for the next records.
func (f *follower) expect(want ...rec) {
	f.t.Helper()
	deadline := time.After(10 * time.Second)
	for i, w := range want {
		select {
		case got := <-f.recs:
			if got != w {
				f.t.Fatalf("record %d = %v, want %v", i, got, w)
			}
		case <-deadline:
			f.t.Fatalf("timed out waiting for %v", w)
		}
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString(s); err != nil {
		t.Fatal(err)
	}
	fh.Close()
}

func TestFileSourceFollowRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "one\n")
	f := startFollow(t, FileConfig{Path: path})
	f.expect(rec{path, 1, "one", 0})

	appendTo(t, path, "two\nthr")
	f.expect(rec{path, 2, "two", 0})
	appendTo(t, path, "ee\n")
	f.expect(rec{path, 3, "three", 0})

	// logrotate "create": rename, then a new file at the path. The old file's
	// unterminated tail is still delivered before the new file is read.
	appendTo(t, path, "tail-no-newline")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "new1\nnew2\n")
	f.expect(rec{path, 4, "tail-no-newline", 0}, rec{path, 1, "new1", 0}, rec{path, 2, "new2", 0})

	// copytruncate: the file is truncated in place and written again.
	before := metricValue(t, "truncated")
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	// Wait until the truncation is noticed before writing (a real writer
	// appends far less than was there before).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if metricValue(t, "truncated") > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("truncation not noticed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	appendTo(t, path, "after-truncate\n")
	f.expect(rec{path, 1, "after-truncate", 0})
}

func TestFileSourceFollowStartAtEndAndLateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.log")
	writeFile(t, path, "old1\nold2\n")
	f := startFollow(t, FileConfig{Path: path, StartAt: StartEnd})
	appendTo(t, path, "new\n")
	f.expect(rec{path, 3, "new", 0}) // line numbers count the skipped lines

	late := filepath.Join(dir, "late.log")
	g := startFollow(t, FileConfig{Path: late})
	time.Sleep(20 * time.Millisecond)
	appendTo(t, late, "hello\n")
	g.expect(rec{late, 1, "hello", 0})
}

func TestFileSourceFollowShutdown(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.log")
	writeFile(t, path, "")
	src, err := NewFileSource(FileConfig{Path: path, Follow: true}, tokenwatch.KindAuth, Limits{PollInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if err := src.Next(ctx, &tokenwatch.Batch{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel = %v, want context.Canceled", err)
	}
}

func TestReaderSource(t *testing.T) {
	in := "a\r\nb\n" + strings.Repeat("x", 40) + "\nlast"
	src := NewReaderSource("-", strings.NewReader(in), tokenwatch.KindApp, Limits{MaxRecordBytes: 10, BatchSize: 2})
	equalRecs(t, drain(t, src), []rec{
		{"-", 1, "a", 0}, {"-", 2, "b", 0}, {"-", 3, "xxxxxxxxxx", tokenwatch.FlagTruncated}, {"-", 4, "last", 0},
	})
	if src.Committed() != 4 {
		t.Errorf("committed %d, want 4", src.Committed())
	}
}

// A stream that stalls mid-way: the batch is flushed after FlushInterval, and
// a cancelled ctx ends Next even while the stream blocks.
func TestReaderSourceFlushAndCancel(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	src := NewReaderSource("-", pr, tokenwatch.KindApp, Limits{FlushInterval: 10 * time.Millisecond})
	go pw.Write([]byte("one\ntwo\n"))
	ctx, cancel := context.WithCancel(context.Background())
	b := &tokenwatch.Batch{}
	var got []rec
	for len(got) < 2 {
		b.Reset()
		if err := src.Next(ctx, b); err != nil {
			t.Fatal(err)
		}
		got = append(got, recs(b)...)
	}
	equalRecs(t, got, []rec{{"-", 1, "one", 0}, {"-", 2, "two", 0}})
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	b.Reset()
	if err := src.Next(ctx, b); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next on a stalled stream after cancel = %v", err)
	}
}

func TestMulti(t *testing.T) {
	dir := t.TempDir()
	var want []rec
	var srcs []Source
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("f%d.log", i))
		var sb strings.Builder
		for j := 1; j <= 50; j++ {
			fmt.Fprintf(&sb, "%d-%d\n", i, j)
			want = append(want, rec{p, int64(j), fmt.Sprintf("%d-%d", i, j), 0})
		}
		writeFile(t, p, sb.String())
		s, err := NewFileSource(FileConfig{Path: p}, tokenwatch.KindApp, Limits{BatchSize: 8})
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, s)
	}
	m := NewMulti(srcs, 2)
	got := drain(t, m)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// Interleaving across sources is free; each source's order is kept.
	per := map[string][]rec{}
	for _, r := range got {
		per[r.src] = append(per[r.src], r)
	}
	for _, w := range want {
		if len(per[w.src]) == 0 || per[w.src][0] != w {
			t.Fatalf("want %v next from %s, have %v", w, w.src, per[w.src])
		}
		per[w.src] = per[w.src][1:]
	}
	for i, s := range srcs {
		if p := s.(*FileSource).Progress()[want[50*i].src]; p != 50 {
			t.Errorf("source %d progress %d, want 50 (commits routed back)", i, p)
		}
	}
}

// Reading a batch allocates nothing per record: the cost of Next is the same
// for a batch of 1000 lines as for a batch of 10.
func TestFileSourceAllocsPerBatch(t *testing.T) {
	dir := t.TempDir()
	line := strings.Repeat("x", 120) + "\n"
	writeFile(t, filepath.Join(dir, "big.log"), strings.Repeat(line, 300_000))
	for _, size := range []int{10, 1000} {
		src, err := NewFileSource(FileConfig{Path: filepath.Join(dir, "big.log")}, tokenwatch.KindApp, Limits{BatchSize: size})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		b := &tokenwatch.Batch{}
		step := func() {
			b.Reset()
			if err := src.Next(ctx, b); err != nil {
				t.Fatal(err)
			}
			if err := src.Commit(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		for range 5 { // warm up: arena, records, buffers reach their size
			step()
		}
		allocs := testing.AllocsPerRun(50, step)
		src.Close()
		if allocs > 2 {
			t.Errorf("batch of %d lines: %.1f allocations per Next+Commit, want at most 2 (none per record)", size, allocs)
		}
	}
}

func BenchmarkFileSource(b *testing.B) {
	dir := b.TempDir()
	line := `203.0.113.7 - - [25/Nov/2026:08:00:00 +0000] "GET /api/orders?page=2 HTTP/1.1" 200 512 "-" "Mozilla/5.0 (X11; Linux x86_64)"` + "\n"
	content := strings.Repeat(line, 100_000)
	p := filepath.Join(dir, "access.log")
	writeFile(b, p, content)
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	ctx := context.Background()
	batch := &tokenwatch.Batch{}
	for b.Loop() {
		src, err := NewFileSource(FileConfig{Path: p}, tokenwatch.KindAuth, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			batch.Reset()
			if err := src.Next(ctx, batch); err != nil {
				break
			}
			_ = src.Commit(ctx, batch)
		}
		src.Close()
	}
}

// A Multi with a followed file never ends by itself; Close stops it promptly.
func TestMultiCloseWhileFollowing(t *testing.T) {
	dir := t.TempDir()
	followed, plain := filepath.Join(dir, "f.log"), filepath.Join(dir, "p.log")
	writeFile(t, followed, "f1\n")
	writeFile(t, plain, "p1\np2\n")
	fs1, err := NewFileSource(FileConfig{Path: followed, Follow: true}, tokenwatch.KindAuth, Limits{PollInterval: 5 * time.Millisecond, FlushInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fs2, err := NewFileSource(FileConfig{Path: plain}, tokenwatch.KindApp, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	m := NewMulti([]Source{fs1, fs2}, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := map[string]int{}
	for got[followed] < 1 || got[plain] < 2 {
		b := &tokenwatch.Batch{}
		if err := m.Next(ctx, b); err != nil {
			t.Fatalf("Next: %v (got %v)", err, got)
		}
		for _, r := range b.Records {
			got[r.Source]++
		}
		if err := m.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a followed file")
	}
}
