package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// Sink is a Stage that writes one JSON line per finding: the scan finding
// contract (source, line or partition+offset, start, end, kind, rule,
// fingerprint, redacted, jwt) plus what parsing and enrichment learned of the
// use (time, ip, user agent, status, service, …). It never writes Record.Raw or
// any other credential bytes.
//
// Lines are flushed (and fsynced with WithFsync) before Process returns, so a
// batch's findings are on disk before its offsets are committed.
type Sink struct {
	mu    sync.Mutex
	w     *bufio.Writer
	enc   *json.Encoder
	file  *os.File // nil for stdout or a plain writer
	fsync bool
	own   bool
	line  findingLine
}

// SinkOption configures a Sink.
type SinkOption func(*Sink)

// WithFsync makes Process fsync the file after writing a batch.
func WithFsync(on bool) SinkOption { return func(s *Sink) { s.fsync = on } }

// NewSink writes finding lines to w. If w is an *os.File, WithFsync applies to it.
func NewSink(w io.Writer, opts ...SinkOption) *Sink {
	s := &Sink{w: bufio.NewWriterSize(w, 64<<10)}
	if f, ok := w.(*os.File); ok {
		s.file = f
	}
	s.enc = json.NewEncoder(s.w)
	s.enc.SetEscapeHTML(false)
	for _, o := range opts {
		o(s)
	}
	return s
}

// OpenSink opens c.FindingsFile for appending ("-" is stdout). It returns nil,
// nil when no findings file is configured.
func OpenSink(c OutputConfig, stdout io.Writer) (*Sink, error) {
	switch c.FindingsFile {
	case "":
		return nil, nil
	case "-":
		return NewSink(stdout), nil
	}
	f, err := os.OpenFile(c.FindingsFile, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open findings file: %w", err)
	}
	if err := terminateLastLine(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("findings file %s: %w", c.FindingsFile, err)
	}
	s := NewSink(f, WithFsync(c.Fsync))
	s.own = true
	return s, nil
}

// terminateLastLine ends a line that a killed process left unterminated, so
// the lines appended next start clean (the cut line stays invalid JSON; its
// batch was not committed and its findings are written again).
func terminateLastLine(f *os.File) error {
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 || !fi.Mode().IsRegular() {
		return err
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], fi.Size()-1); err != nil {
		return err
	}
	if last[0] != '\n' {
		_, err = f.Write([]byte{'\n'})
	}
	return err
}

// findingLine is the JSON shape of one line. Field order is the output order.
type findingLine struct {
	Source      string              `json:"source"`
	Line        int64               `json:"line,omitempty"`
	Partition   *int32              `json:"partition,omitempty"`
	Offset      *int64              `json:"offset,omitempty"`
	Start       int                 `json:"start"`
	End         int                 `json:"end"`
	Kind        string              `json:"kind"`
	Rule        string              `json:"rule"`
	Fingerprint string              `json:"fingerprint"`
	Redacted    string              `json:"redacted"`
	Scheme      string              `json:"scheme,omitempty"`
	Param       string              `json:"param,omitempty"`
	JWT         *tokenwatch.JWTInfo `json:"jwt,omitempty"`
	SourceKind  string              `json:"source_kind"`
	Leak        bool                `json:"leak"`
	Flags       []string            `json:"flags,omitempty"`
	Format      string              `json:"format,omitempty"`
	Time        *time.Time          `json:"time,omitempty"`
	IP          string              `json:"ip,omitempty"`
	UserAgent   string              `json:"user_agent,omitempty"`
	User        string              `json:"user,omitempty"`
	Method      string              `json:"method,omitempty"`
	Path        string              `json:"path,omitempty"`
	Status      int                 `json:"status,omitempty"`
	Service     string              `json:"service,omitempty"`
	Host        string              `json:"host,omitempty"`
	Geo         *tokenwatch.Geo     `json:"geo,omitempty"`

	partition int32
	offset    int64
	time      time.Time
	geo       tokenwatch.Geo
	flags     [4]string
}

// Process implements tokenwatch.Stage.
func (s *Sink) Process(_ context.Context, b *tokenwatch.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for i := range b.Records {
		r := &b.Records[i]
		for j := range r.Findings {
			s.fill(r, j, findUse(b.Uses, r.Origin, j))
			if err := s.enc.Encode(&s.line); err != nil {
				return fmt.Errorf("write findings: %w", err)
			}
			n++
		}
	}
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("write findings: %w", err)
	}
	if s.fsync && s.file != nil && n > 0 {
		if err := s.file.Sync(); err != nil {
			return fmt.Errorf("fsync findings file: %w", err)
		}
	}
	metricSinkLines.Add(float64(n))
	return nil
}

// findUse returns the use built from finding j of the record at o, or nil.
// Uses are few (one per finding), so a linear scan is cheap.
func findUse(uses []tokenwatch.TokenUse, o tokenwatch.Origin, j int) *tokenwatch.TokenUse {
	for k := range uses {
		if uses[k].Index == j && uses[k].Origin == o {
			return &uses[k]
		}
	}
	return nil
}

var flagNames = [...]struct {
	f    tokenwatch.RecordFlags
	name string
}{
	{tokenwatch.FlagMalformed, "malformed"},
	{tokenwatch.FlagTruncated, "truncated"},
	{tokenwatch.FlagBinary, "binary"},
	{tokenwatch.FlagInvalidUTF8, "invalid_utf8"},
}

func (s *Sink) fill(r *tokenwatch.Record, j int, u *tokenwatch.TokenUse) {
	f := &r.Findings[j]
	l := &s.line
	*l = findingLine{
		Source: r.Source, Start: f.Start, End: f.End, Kind: f.Kind, Rule: f.Rule,
		Fingerprint: f.Fingerprint.String(), Redacted: f.Redacted, Scheme: f.Scheme, Param: f.Param,
		JWT: f.JWT, SourceKind: r.Kind.String(), Leak: r.Kind == tokenwatch.KindApp,
	}
	if r.IsKafka() {
		l.partition, l.offset = r.Partition, r.Offset
		l.Partition, l.Offset = &l.partition, &l.offset
	} else {
		l.Line = r.Offset
	}
	nf := 0
	for _, fn := range flagNames {
		if r.Flags&fn.f != 0 {
			l.flags[nf] = fn.name
			nf++
		}
	}
	if nf > 0 {
		l.Flags = l.flags[:nf]
	}
	if r.Parsed {
		fl := &r.Fields
		l.Format = fl.Format
		l.time = fl.Time
		if fl.IP.IsValid() {
			l.IP = fl.IP.String()
		}
		l.UserAgent, l.User, l.Method, l.Path = fl.UserAgent, fl.User, fl.Method, fl.Path
		l.Status, l.Service, l.Host = fl.Status, fl.Service, fl.Host
	}
	if u != nil {
		l.time = u.Time
		if u.IP.IsValid() {
			l.IP = u.IP.String()
		}
		l.UserAgent, l.User, l.Method, l.Path = u.UserAgent, u.User, u.Method, u.Path
		l.Status, l.Service, l.Host = u.Status, u.Service, u.Host
		if u.JWT != nil {
			l.JWT = u.JWT
		}
		if u.Geo != (tokenwatch.Geo{}) {
			l.geo = u.Geo
			l.Geo = &l.geo
		}
	}
	if !l.time.IsZero() {
		l.time = l.time.UTC()
		l.Time = &l.time
	}
}

// Close flushes and, for a file OpenSink opened, closes it.
func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.w.Flush()
	if s.own && s.file != nil {
		if cerr := s.file.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
