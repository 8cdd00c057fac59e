package ingest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// Limits are the batching and record-size limits shared by file-like sources.
type Limits struct {
	// MaxRecordBytes cuts longer records (FlagTruncated); the rest of the line
	// is skipped without being buffered.
	MaxRecordBytes int
	// BatchSize and BatchBytes end a batch at that many records or raw bytes.
	BatchSize  int
	BatchBytes int
	// FlushInterval ends a batch that has records once this much time passed
	// since its first record (follow mode and stdin, where data trickles in).
	FlushInterval time.Duration
	// PollInterval is how often a followed file at its end is checked for new
	// data, rotation and truncation.
	PollInterval time.Duration
}

func (l Limits) withDefaults() Limits {
	d := DefaultConfig()
	if l.MaxRecordBytes <= 0 {
		l.MaxRecordBytes = d.MaxRecordBytes
	}
	if l.BatchSize <= 0 {
		l.BatchSize = d.BatchSize
	}
	if l.BatchBytes <= 0 {
		l.BatchBytes = d.BatchBytes
	}
	if l.FlushInterval <= 0 {
		l.FlushInterval = d.FlushInterval
	}
	if l.PollInterval <= 0 {
		l.PollInterval = d.PollInterval
	}
	return l
}

// sniffLen is how much of a file's (decompressed) start is checked for NUL
// bytes when deciding whether a file found in a directory is binary.
const sniffLen = 8000

var gzipMagic = []byte{0x1f, 0x8b}

// FileSource reads one configured path: a file, or a directory whose regular
// files are read recursively in lexical order. Gzip files are recognised by
// their magic bytes and decompressed. In follow mode the single file is read to
// its end and then watched like `tail -F`: appended lines are read as they come,
// a rotated file (the path now names another file) is drained and the new file
// read from its start, and a file truncated in place is read again from its start.
//
// Records have Origin{Source: path, Partition: -1, Offset: 1-based line number}.
type FileSource struct {
	kind   tokenwatch.SourceKind
	lim    Limits
	follow bool
	// startAtEnd skips the lines present when a followed file is first opened.
	startAtEnd bool

	paths []string // files to read, in order
	idx   int      // index into paths of the current or next file

	f      *os.File
	info   os.FileInfo
	br     *bufio.Reader
	gz     *gzip.Reader
	rd     io.Reader // br or gz
	pos    int64     // bytes read from f (follow mode)
	lr     *lineReader
	readFn func([]byte) (int, error)
	// rotated is set when a followed file was replaced: the old one is drained
	// to EOF, then the path is opened again.
	rotated bool
	opened  bool // the followed file has been opened at least once
	timer   *time.Timer

	arenas arenas

	// cps persists progress (ingest.state_file); nil keeps it in memory only.
	cps      *Checkpoints
	resumed  map[string]bool // paths whose checkpoint was applied
	dev, ino uint64          // identity of the open file
	head     uint64          // hash of its first headN bytes
	headN    int64
	isGzip   bool

	mu        sync.Mutex
	committed map[string]int64 // path -> last committed line
}

// fileMark is the last record of one file in a batch: what Commit records.
type fileMark struct {
	path     string
	dev, ino uint64
	head     uint64
	headN    int64
	line     int64 // last line in the batch (Progress)
	gzip     bool
	// cpLine and offset are the last line whose end is known exactly and the
	// byte offset after it (a cut line's end is not: it is replayed).
	cpLine int64
	offset int64
}

// FileOption configures a FileSource.
type FileOption func(*FileSource)

// WithCheckpoints makes the source resume each file after the line committed in
// cps (when the path still names the same file) and record its progress there
// on Commit.
func WithCheckpoints(cps *Checkpoints) FileOption {
	return func(s *FileSource) {
		s.cps = cps
		s.resumed = map[string]bool{}
	}
}

// NewFileSource resolves fc.Path (a file or a directory) and returns its source.
func NewFileSource(fc FileConfig, kind tokenwatch.SourceKind, lim Limits, opts ...FileOption) (*FileSource, error) {
	lim = lim.withDefaults()
	s := &FileSource{kind: kind, lim: lim, follow: fc.Follow, startAtEnd: fc.StartAt == StartEnd, committed: map[string]int64{}}
	for _, o := range opts {
		o(s)
	}
	s.readFn = s.read
	s.lr = newLineReader(s.readFn, lim.MaxRecordBytes, !fc.Follow)
	fi, err := os.Stat(fc.Path)
	switch {
	case err != nil && fc.Follow && errors.Is(err, fs.ErrNotExist):
		// tail -F: wait for the file to appear.
		s.paths = []string{fc.Path}
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("file source %s: %w", fc.Path, err)
	case fi.IsDir():
		if fc.Follow {
			return nil, fmt.Errorf("file source %s: follow works on a single file, not a directory", fc.Path)
		}
		s.paths, err = listFiles(fc.Path)
		if err != nil {
			return nil, err
		}
	default:
		s.paths = []string{fc.Path}
		if s.follow && s.startAtEnd {
			// "end" means the end as of now: open and skip the existing lines
			// at once rather than on the first Next.
			if _, err := s.open(); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// listFiles returns the regular files under dir, recursively, in lexical order.
func listFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			slog.Warn("file source: cannot read directory entry", "path", p, "err", err)
			metricFilesSkipped.WithLabelValues("unreadable").Inc()
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			metricFilesSkipped.WithLabelValues("not_regular").Inc()
			return nil
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("file source %s: %w", dir, err)
	}
	sort.Strings(out) // WalkDir is lexical per directory; make the whole list so
	return out, nil
}

func (s *FileSource) read(p []byte) (int, error) {
	n, err := s.rd.Read(p)
	s.pos += int64(n)
	return n, err
}

// open opens s.paths[s.idx]. It returns false, nil when the file was skipped
// (binary in a directory walk, unreadable) and the caller should move on.
func (s *FileSource) open() (bool, error) {
	path := s.paths[s.idx]
	f, err := os.Open(path)
	if err != nil {
		if s.follow && errors.Is(err, fs.ErrNotExist) {
			return false, errNoLine
		}
		slog.Warn("file source: cannot open file", "path", path, "err", err)
		metricFilesSkipped.WithLabelValues("unreadable").Inc()
		return false, nil
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
	if s.br == nil {
		s.br = bufio.NewReaderSize(f, 16<<10)
	} else {
		s.br.Reset(f)
	}
	s.f, s.info, s.pos, s.rd = f, info, 0, s.br
	if magic, _ := s.br.Peek(2); bytes.Equal(magic, gzipMagic) {
		if s.follow {
			s.closeFile()
			return false, fmt.Errorf("file source %s: follow does not support gzip files", path)
		}
		if s.gz == nil {
			s.gz, err = gzip.NewReader(s.br)
		} else {
			err = s.gz.Reset(s.br)
		}
		if err != nil {
			slog.Warn("file source: bad gzip header", "path", path, "err", err)
			metricFilesSkipped.WithLabelValues("unreadable").Inc()
			s.closeFile()
			return false, nil
		}
		s.rd = s.gz
	}
	if len(s.paths) > 1 && s.isBinary() {
		slog.Info("file source: skipping binary file", "path", path)
		metricFilesSkipped.WithLabelValues("binary").Inc()
		s.closeFile()
		return false, nil
	}
	metricFilesOpened.Inc()
	s.lr.reset(s.readFn, !s.follow)
	s.dev, s.ino = fileID(info)
	s.isGzip = s.rd != s.br
	s.headN = min(info.Size(), headLen)
	if s.head, err = headHash(s.f, s.headN); err != nil {
		s.headN = 0
	}
	if s.cps != nil && !s.resumed[path] {
		s.resumed[path] = true
		if ok, err := s.resume(path, info); err != nil {
			slog.Warn("file source: cannot resume from the state file; reading from the start", "path", path, "err", err)
			s.closeFile()
			return s.open()
		} else if ok {
			s.opened = true
			return true, nil
		}
	}
	if s.follow && s.startAtEnd && !s.opened {
		// Count the existing lines so later line numbers stay exact.
		var scratch []byte
		for {
			var err error
			scratch, _, err = s.lr.next(scratch[:0])
			if err != nil {
				break
			}
		}
	}
	s.opened = true
	return true, nil
}

// resume applies the checkpoint of path if it names this very file and the file
// did not shrink below it. It reports whether reading continues from there.
func (s *FileSource) resume(path string, info os.FileInfo) (bool, error) {
	cp, ok := s.cps.get(path)
	if !ok || cp.Line <= 0 || cp.Dev != s.dev || cp.Ino != s.ino || cp.Gzip != s.isGzip {
		return false, nil
	}
	if cp.HeadLen > 0 {
		if h, err := headHash(s.f, cp.HeadLen); err != nil || h != cp.Head {
			return false, nil // another file at a reused inode, or truncated
		}
	}
	if s.isGzip {
		if err := s.lr.skipLines(cp.Line); err != nil && err != io.EOF && err != errNoLine {
			return false, err
		}
		slog.Info("file source: resuming after the committed line", "path", path, "line", cp.Line)
		return true, nil
	}
	if info.Size() < cp.Offset {
		return false, nil // truncated while we were away
	}
	if _, err := s.f.Seek(cp.Offset, io.SeekStart); err != nil {
		return false, err
	}
	s.br.Reset(s.f)
	s.rd = s.br
	s.pos = cp.Offset
	s.lr.reset(s.readFn, !s.follow)
	s.lr.line = cp.Line
	slog.Info("file source: resuming after the committed line", "path", path, "line", cp.Line, "offset", cp.Offset)
	return true, nil
}

// isBinary peeks at the start of the (decompressed) file for NUL bytes. The
// peeked bytes stay buffered for the line reader.
func (s *FileSource) isBinary() bool {
	if s.rd == s.gz {
		// Wrap the decompressor so its output can be peeked.
		br := bufio.NewReaderSize(s.gz, sniffLen)
		s.rd = br
		head, _ := br.Peek(sniffLen)
		return bytes.IndexByte(head, 0) >= 0
	}
	head, _ := s.br.Peek(sniffLen)
	return bytes.IndexByte(head, 0) >= 0
}

func (s *FileSource) closeFile() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// checkFollowed looks for rotation or truncation of the followed file at EOF.
// It reports whether reading should be retried at once.
func (s *FileSource) checkFollowed() bool {
	path := s.paths[s.idx]
	fi, err := os.Stat(path)
	if err != nil {
		return false // moved away and not recreated yet: keep waiting
	}
	if !os.SameFile(fi, s.info) {
		s.rotated = true
		s.lr.final = true // drain the old file, partial last line included
		metricFileRotations.WithLabelValues("rotated").Inc()
		return true
	}
	if fi.Size() < s.pos {
		if _, err := s.f.Seek(0, io.SeekStart); err != nil {
			slog.Warn("file source: cannot rewind truncated file", "path", path, "err", err)
			return false
		}
		s.br.Reset(s.f)
		s.pos = 0
		s.lr.reset(s.readFn, false)
		metricFileRotations.WithLabelValues("truncated").Inc()
		return true
	}
	return false
}

func (s *FileSource) wait(ctx context.Context, d time.Duration) bool {
	if s.timer == nil {
		s.timer = time.NewTimer(d)
	} else {
		s.timer.Reset(d)
	}
	select {
	case <-ctx.Done():
		s.timer.Stop()
		return false
	case <-s.timer.C:
		return true
	}
}

// Next implements Source.
func (s *FileSource) Next(ctx context.Context, b *tokenwatch.Batch) error {
	a := s.arenas.get(b)
	a.reset()
	first := len(b.Records)
	var deadline time.Time
	ended := false
	var nbytes int
loop:
	for len(b.Records)-first < s.lim.BatchSize && len(a.buf) < s.lim.BatchBytes {
		if s.idx >= len(s.paths) {
			ended = true
			break
		}
		if s.f == nil {
			ok, err := s.open()
			switch {
			case err == errNoLine: // followed file does not exist yet
				if !s.waitOrFlush(ctx, len(b.Records) > first, deadline) {
					break loop
				}
				continue
			case err != nil:
				return err
			case !ok:
				s.idx++
				continue
			}
		}
		n0 := len(a.buf)
		buf, flags, err := s.lr.next(a.buf)
		a.buf = buf
		switch {
		case err == nil:
			a.add(b, tokenwatch.Origin{Source: s.paths[s.idx], Partition: -1, Offset: s.lr.line}, s.kind, flags)
			s.mark(a)
			nbytes += len(a.buf) - n0
			if flags&tokenwatch.FlagTruncated != 0 {
				metricTruncated.WithLabelValues("file").Inc()
			}
			if deadline.IsZero() {
				deadline = time.Now().Add(s.lim.FlushInterval)
			}
		case err == errNoLine: // followed file at its end
			if s.checkFollowed() {
				continue
			}
			if !s.waitOrFlush(ctx, len(b.Records) > first, deadline) {
				break loop
			}
		case err == io.EOF:
			s.closeFile()
			if s.follow {
				// Only a rotation ends a followed file: open the new one.
				s.rotated = false
				continue
			}
			s.idx++
		default:
			slog.Warn("file source: read error, abandoning the rest of the file", "path", s.paths[s.idx], "line", s.lr.line, "err", err)
			metricReadErrors.WithLabelValues("file").Inc()
			s.closeFile()
			if !s.follow {
				s.idx++
			}
		}
	}
	a.finish(b, first)
	n := len(b.Records) - first
	if n > 0 {
		metricRecords.WithLabelValues("file").Add(float64(n))
		metricBytes.WithLabelValues("file").Add(float64(nbytes))
		return nil
	}
	if ended {
		return io.EOF
	}
	return ctx.Err()
}

// mark notes the record just added as the latest of its file in the batch.
func (s *FileSource) mark(a *arena) {
	path := s.paths[s.idx]
	n := len(a.marks)
	if n == 0 || a.marks[n-1].path != path || a.marks[n-1].ino != s.ino || a.marks[n-1].dev != s.dev {
		a.marks = append(a.marks, fileMark{path: path, dev: s.dev, ino: s.ino, head: s.head, headN: s.headN, gzip: s.isGzip})
		n++
	}
	m := &a.marks[n-1]
	m.line = s.lr.line
	// While the rest of a cut line is being skipped, the byte position is
	// mid-line: keep the previous line's position (the cut line is replayed).
	if !s.lr.skipping {
		m.cpLine, m.offset = s.lr.line, s.pos-int64(s.lr.buffered())
	}
}

// waitOrFlush waits one poll interval (less when a batch with records is due).
// It returns false when Next should return now: the batch's flush deadline
// passed or ctx is done.
func (s *FileSource) waitOrFlush(ctx context.Context, have bool, deadline time.Time) bool {
	d := s.lim.PollInterval
	if have {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		d = min(d, left)
	}
	return s.wait(ctx, d)
}

// Commit implements Source: it records the last line of each file in b as
// processed (see Progress).
func (s *FileSource) Commit(_ context.Context, b *tokenwatch.Batch) error {
	a := s.arenas.get(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range a.marks {
		s.committed[m.path] = m.line
		if s.cps != nil && m.cpLine > 0 {
			s.cps.set(m.path, checkpoint{Dev: m.dev, Ino: m.ino, Head: m.head, HeadLen: m.headN, Line: m.cpLine, Offset: m.offset, Gzip: m.gzip})
		}
	}
	return nil
}

// Progress returns, for each file that had records committed, the last
// committed line number.
func (s *FileSource) Progress() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int64, len(s.committed))
	for k, v := range s.committed {
		out[k] = v
	}
	return out
}

// Close implements Source.
func (s *FileSource) Close() error {
	s.closeFile()
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.cps != nil {
		if err := s.cps.Flush(); err != nil {
			return fmt.Errorf("write state file: %w", err)
		}
	}
	return nil
}
