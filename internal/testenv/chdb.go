package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvCHDBPython names the environment variable with the python that has chdb-core.
const EnvCHDBPython = "TOKENWATCH_TEST_CHDB_PYTHON"

// chdbStartTimeout bounds chDB's import and session start (about 2 s when warm).
const chdbStartTimeout = 2 * time.Minute

// CHDB is a chDB session: current ClickHouse as a library, run in a helper process
// (scripts/chdb_server.py) with a private temporary data directory, so each CHDB
// starts empty and tables persist between statements of the same CHDB. Methods are
// safe for concurrent use; statements run one at a time.
type CHDB struct {
	t       testing.TB
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan []byte // one protocol line per response; closed on EOF
	stderr  *tailBuffer
	version string

	mu     sync.Mutex
	closed bool
}

// NewCHDB starts a chDB session (via python chdb-core, env TOKENWATCH_TEST_CHDB_PYTHON =
// the python that has it); it skips the test when the variable is unset. The session
// is closed and its data removed when the test ends.
func NewCHDB(t testing.TB) *CHDB {
	t.Helper()
	python := skipUnless(t, EnvCHDBPython, "chDB")
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("NewCHDB: %v", err)
	}
	cmd := exec.Command(python, filepath.Join(root, "scripts", "chdb_server.py"))
	cmd.Dir = root
	c := &CHDB{t: t, cmd: cmd, stderr: &tailBuffer{max: 64 << 10}, lines: make(chan []byte, 1)}
	cmd.Stderr = c.stderr
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatalf("NewCHDB: stdin pipe: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("NewCHDB: stdout pipe: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("NewCHDB: start %s scripts/chdb_server.py: %v", python, err)
	}
	go c.readLines(stdout)
	t.Cleanup(c.close)

	var ready struct {
		Ready   bool   `json:"ready"`
		Version string `json:"version"`
	}
	line, err := c.next(chdbStartTimeout)
	if err == nil {
		err = json.Unmarshal(line, &ready)
	}
	if err != nil || !ready.Ready {
		t.Fatalf("NewCHDB: chDB helper did not start: %v (got %q)\nstderr:\n%s", err, line, c.stderr)
	}
	c.version = ready.Version
	return c
}

func (c *CHDB) readLines(r io.Reader) {
	defer close(c.lines)
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			c.lines <- line
		}
		if err != nil {
			return
		}
	}
}

// next waits for the helper's next line.
func (c *CHDB) next(timeout time.Duration) ([]byte, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case line, ok := <-c.lines:
		if !ok {
			return nil, errors.New("chDB helper exited")
		}
		return line, nil
	case <-timer.C:
		return nil, fmt.Errorf("no answer from the chDB helper within %v", timeout)
	}
}

type chdbResponse struct {
	OK      bool     `json:"ok"`
	Error   string   `json:"error"`
	Columns []string `json:"columns"`
	Types   []string `json:"types"`
	Rows    [][]any  `json:"rows"`
}

// chdbStatementTimeout bounds one request; go test's own -timeout still applies.
const chdbStatementTimeout = 5 * time.Minute

func (c *CHDB) do(op, sql string) (*chdbResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("chDB session already closed")
	}
	req, err := json.Marshal(map[string]string{"op": op, "sql": sql})
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	if _, err := c.stdin.Write(append(req, '\n')); err != nil {
		return nil, fmt.Errorf("send to chDB helper: %w\nstderr:\n%s", err, c.stderr)
	}
	line, err := c.next(chdbStatementTimeout)
	if err != nil {
		return nil, fmt.Errorf("%w\nstderr:\n%s", err, c.stderr)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var resp chdbResponse
	if err := dec.Decode(&resp); err != nil {
		return nil, fmt.Errorf("decode chDB helper answer %.200q: %w", line, err)
	}
	if !resp.OK {
		return nil, errors.New(resp.Error)
	}
	return &resp, nil
}

// Exec runs one or more ';'-separated statements and discards their output.
func (c *CHDB) Exec(sql string) error {
	if _, err := c.do("exec", sql); err != nil {
		return fmt.Errorf("chdb exec %s: %w", abbrev(sql), err)
	}
	return nil
}

// Query runs one SELECT and returns its rows (column name -> value decoded from JSON)
// and the column names in order. Values are as in ClickHouse's JSONCompact output,
// decoded with json.Number for numbers (exact for UInt64/Int64; use fmt.Sprint,
// Int64 or Float64), string, bool, nil, []any for arrays and tuples, and
// map[string]any for maps. Rows of a query with duplicate column names keep the last.
func (c *CHDB) Query(sql string) (rows []map[string]any, columns []string, err error) {
	resp, err := c.do("query", sql)
	if err != nil {
		return nil, nil, fmt.Errorf("chdb query %s: %w", abbrev(sql), err)
	}
	rows = make([]map[string]any, 0, len(resp.Rows))
	for i, r := range resp.Rows {
		if len(r) != len(resp.Columns) {
			return nil, nil, fmt.Errorf("chdb query %s: row %d has %d values for %d columns", abbrev(sql), i, len(r), len(resp.Columns))
		}
		m := make(map[string]any, len(r))
		for j, v := range r {
			m[resp.Columns[j]] = v
		}
		rows = append(rows, m)
	}
	return rows, resp.Columns, nil
}

// close ends the helper: EOF on stdin, then SIGKILL if it has not exited in 10 s.
func (c *CHDB) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	_ = c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			c.t.Logf("chDB helper exited: %v\nstderr:\n%s", err, c.stderr)
		}
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
		c.t.Logf("chDB helper did not exit within 10s of EOF; killed")
	}
}

func abbrev(sql string) string {
	sql = strings.Join(strings.Fields(sql), " ")
	if len(sql) > 120 {
		sql = sql[:117] + "..."
	}
	return fmt.Sprintf("%q", sql)
}

// tailBuffer keeps the last max bytes written to it (the helper's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
