package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Checkpoints persist file-source progress (ingest.state_file) so that a
// restarted `run` resumes each file after its last committed line instead of
// reading it again from the start. Progress is written at most once per
// FlushEvery and on Close; a crash therefore replays at most that much, never
// skips a line (at-least-once).
type Checkpoints struct {
	path       string
	flushEvery time.Duration

	mu        sync.Mutex
	m         map[string]checkpoint
	dirty     bool
	lastFlush time.Time
}

// checkpoint is the committed position in one file.
type checkpoint struct {
	// Dev and Ino identify the file: a path that now names another file (it
	// was rotated while tokenwatch was down) is read from its start.
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
	// Line is the last committed line; Offset the byte offset just after it
	// (of the decompressed stream for gzip files).
	Line   int64 `json:"line"`
	Offset int64 `json:"offset"`
	Gzip   bool  `json:"gzip,omitempty"`
	// Head is a hash of the file's first HeadLen bytes: inodes are reused, so
	// a file deleted and recreated at the same path may have the same Dev/Ino.
	Head    uint64 `json:"head"`
	HeadLen int64  `json:"head_len"`
}

// headLen is how much of a file's start identifies it.
const headLen = 1024

// headHash hashes the first n bytes of f (n <= headLen) without moving its
// read offset.
func headHash(f *os.File, n int64) (uint64, error) {
	var buf [headLen]byte
	got, err := f.ReadAt(buf[:n], 0)
	if int64(got) < n {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return 0, err
	}
	h := fnv.New64a()
	h.Write(buf[:n])
	return h.Sum64(), nil
}

// LoadCheckpoints reads the state file at path (a missing file is empty).
func LoadCheckpoints(path string) (*Checkpoints, error) {
	c := &Checkpoints{path: path, flushEvery: time.Second, m: map[string]checkpoint{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ingest.state_file: %w", err)
	}
	if err := json.Unmarshal(data, &c.m); err != nil {
		return nil, fmt.Errorf("ingest.state_file %s: not a tokenwatch state file (%v); delete it to start over", path, err)
	}
	return c, nil
}

func (c *Checkpoints) get(path string) (checkpoint, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cp, ok := c.m[path]
	return cp, ok
}

// set records progress and writes the file if FlushEvery has passed.
func (c *Checkpoints) set(path string, cp checkpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[path] = cp
	c.dirty = true
	if time.Since(c.lastFlush) >= c.flushEvery {
		if err := c.flushLocked(); err != nil {
			slog.Warn("ingest: cannot write the state file; progress is kept in memory", "path", c.path, "err", err)
		}
	}
}

// Flush writes pending progress now.
func (c *Checkpoints) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.flushLocked()
}

func (c *Checkpoints) flushLocked() error {
	c.lastFlush = time.Now()
	if !c.dirty {
		return nil
	}
	data, err := json.MarshalIndent(c.m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return err
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return err
	}
	c.dirty = false
	return nil
}

// fileID returns the device and inode of fi (0, 0 where unknown).
func fileID(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino
	}
	return 0, 0
}
