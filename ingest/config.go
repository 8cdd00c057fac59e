package ingest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// Config is the `ingest` section of the configuration file.
type Config struct {
	// MaxRecordBytes cuts longer records (lines or Kafka messages); the rest of
	// a long line is skipped without being buffered.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// BatchSize, BatchBytes and FlushInterval batch file and stdin records
	// (Kafka has its own, below).
	BatchSize     int           `yaml:"batch_size"`
	BatchBytes    int           `yaml:"batch_bytes"`
	FlushInterval time.Duration `yaml:"flush_interval"`
	// PollInterval is how often a followed file is checked for growth and rotation.
	PollInterval time.Duration `yaml:"poll_interval"`
	// StateFile keeps the committed position of every file source, so a
	// restart resumes after the last committed line; "" reads files from their
	// start (or their end, for start_at: end) on every run.
	StateFile string `yaml:"state_file"`

	Kafka KafkaConfig  `yaml:"kafka"`
	Files []FileConfig `yaml:"files"`
	Stdin StdinConfig  `yaml:"stdin"`
}

// KafkaConfig configures the Kafka consumer-group source. It is enabled when
// Brokers is set.
type KafkaConfig struct {
	Brokers []string      `yaml:"brokers"`
	GroupID string        `yaml:"group_id"`
	Topics  []TopicConfig `yaml:"topics"`
	// StartOffset is where a group with no committed offset starts: "earliest"
	// or "latest". A group that has committed offsets always resumes from them.
	StartOffset string `yaml:"start_offset"`
	ClientID    string `yaml:"client_id"`

	BatchSize     int           `yaml:"batch_size"`
	BatchBytes    int           `yaml:"batch_bytes"`
	FlushInterval time.Duration `yaml:"flush_interval"`

	// FetchMaxBytes bounds one fetch response; FetchMaxWait is how long the
	// broker may hold a fetch waiting for data.
	FetchMaxBytes int           `yaml:"fetch_max_bytes"`
	FetchMaxWait  time.Duration `yaml:"fetch_max_wait"`
	// QueueCapacity is how many fetched messages the reader buffers ahead.
	QueueCapacity int `yaml:"queue_capacity"`

	SessionTimeout    time.Duration `yaml:"session_timeout"`
	RebalanceTimeout  time.Duration `yaml:"rebalance_timeout"`
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`

	TLS  TLSConfig  `yaml:"tls"`
	SASL SASLConfig `yaml:"sasl"`
}

// TopicConfig names a topic and the kind of its records.
type TopicConfig struct {
	Name string `yaml:"name"`
	// Kind is "auth", "app" or "revocation".
	Kind string `yaml:"kind"`
}

// TLSConfig configures TLS to the brokers.
type TLSConfig struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASLConfig configures SASL authentication to the brokers.
type SASLConfig struct {
	// Mechanism is "", "plain", "scram-sha-256" or "scram-sha-512".
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// FileConfig is one entry of ingest.files.
type FileConfig struct {
	// Path is a file or a directory (read recursively, in lexical order).
	Path string `yaml:"path"`
	Kind string `yaml:"kind"`
	// Follow keeps reading the file as it grows, across rotation and truncation.
	Follow bool `yaml:"follow"`
	// StartAt is "beginning" or "end" (follow only): where a followed file is
	// first read from.
	StartAt string `yaml:"start_at"`
}

// StdinConfig configures reading records from standard input.
type StdinConfig struct {
	Enabled bool   `yaml:"enabled"`
	Kind    string `yaml:"kind"`
}

// Enumerated values.
const (
	StartEarliest = "earliest"
	StartLatest   = "latest"
	StartBegin    = "beginning"
	StartEnd      = "end"
	SASLPlain     = "plain"
	SASLScram256  = "scram-sha-256"
	SASLScram512  = "scram-sha-512"
)

// DefaultConfig returns the defaults: no source configured, 16 MiB records,
// batches of 4096 records or 8 MiB.
func DefaultConfig() Config {
	return Config{
		MaxRecordBytes: 16 << 20,
		BatchSize:      4096,
		BatchBytes:     8 << 20,
		FlushInterval:  200 * time.Millisecond,
		PollInterval:   250 * time.Millisecond,
		Kafka: KafkaConfig{
			GroupID:           "tokenwatch",
			StartOffset:       StartEarliest,
			ClientID:          "tokenwatch",
			BatchSize:         4096,
			BatchBytes:        8 << 20,
			FlushInterval:     200 * time.Millisecond,
			FetchMaxBytes:     16 << 20,
			FetchMaxWait:      250 * time.Millisecond,
			QueueCapacity:     8192,
			SessionTimeout:    30 * time.Second,
			RebalanceTimeout:  30 * time.Second,
			HeartbeatInterval: 3 * time.Second,
		},
		Stdin: StdinConfig{Kind: "app"},
	}
}

// ParseKind maps a configured kind name to its SourceKind.
func ParseKind(s string) (tokenwatch.SourceKind, error) {
	switch s {
	case "auth":
		return tokenwatch.KindAuth, nil
	case "app":
		return tokenwatch.KindApp, nil
	case "revocation":
		return tokenwatch.KindRevocation, nil
	}
	return 0, fmt.Errorf("unknown kind %q; use auth (logs of systems that accept tokens), app (application logs: a token there is a leak) or revocation", s)
}

// KafkaEnabled reports whether a Kafka source is configured.
func (c Config) KafkaEnabled() bool { return len(c.Kafka.Brokers) > 0 || len(c.Kafka.Topics) > 0 }

// HasSource reports whether at least one source is configured.
func (c Config) HasSource() bool { return c.KafkaEnabled() || len(c.Files) > 0 || c.Stdin.Enabled }

// Validate reports every mistake in c, one error per mistake, each naming its
// field path (ingest.…) and the fix. It does not require a source: commands
// that need one check HasSource.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("ingest.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	positive := func(field string, v int) {
		if v <= 0 {
			bad(field, "must be positive, got %d", v)
		}
	}
	positiveDur := func(field string, v time.Duration) {
		if v <= 0 {
			bad(field, "must be a positive duration such as 200ms, got %s", v)
		}
	}
	positive("max_record_bytes", c.MaxRecordBytes)
	positive("batch_size", c.BatchSize)
	positive("batch_bytes", c.BatchBytes)
	positiveDur("flush_interval", c.FlushInterval)
	positiveDur("poll_interval", c.PollInterval)

	if c.KafkaEnabled() {
		k := c.Kafka
		if len(k.Brokers) == 0 {
			bad("kafka.brokers", "no broker; list at least one host:port, e.g. [\"127.0.0.1:9092\"]")
		}
		for i, b := range k.Brokers {
			if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
				bad(fmt.Sprintf("kafka.brokers[%d]", i), "%q is not host:port", b)
			}
		}
		if k.GroupID == "" {
			bad("kafka.group_id", "must not be empty; offsets are committed to this consumer group")
		}
		if len(k.Topics) == 0 {
			bad("kafka.topics", "no topic; list at least one {name, kind}")
		}
		seen := map[string]bool{}
		for i, t := range k.Topics {
			f := fmt.Sprintf("kafka.topics[%d]", i)
			if t.Name == "" {
				bad(f+".name", "must not be empty")
			} else if seen[t.Name] {
				bad(f+".name", "topic %q is listed twice", t.Name)
			}
			seen[t.Name] = true
			if t.Kind == "" {
				bad(f+".kind", "missing; set auth, app or revocation")
			} else if _, err := ParseKind(t.Kind); err != nil {
				bad(f+".kind", "%v", err)
			}
		}
		if k.StartOffset != StartEarliest && k.StartOffset != StartLatest {
			bad("kafka.start_offset", "%q is not earliest or latest", k.StartOffset)
		}
		positive("kafka.batch_size", k.BatchSize)
		positive("kafka.batch_bytes", k.BatchBytes)
		positiveDur("kafka.flush_interval", k.FlushInterval)
		positive("kafka.fetch_max_bytes", k.FetchMaxBytes)
		positiveDur("kafka.fetch_max_wait", k.FetchMaxWait)
		positive("kafka.queue_capacity", k.QueueCapacity)
		positiveDur("kafka.session_timeout", k.SessionTimeout)
		positiveDur("kafka.rebalance_timeout", k.RebalanceTimeout)
		positiveDur("kafka.heartbeat_interval", k.HeartbeatInterval)
		if k.HeartbeatInterval > 0 && k.SessionTimeout > 0 && k.HeartbeatInterval >= k.SessionTimeout {
			bad("kafka.heartbeat_interval", "%s must be shorter than session_timeout %s", k.HeartbeatInterval, k.SessionTimeout)
		}
		if !k.TLS.Enabled && (k.TLS.CAFile != "" || k.TLS.CertFile != "" || k.TLS.KeyFile != "" || k.TLS.InsecureSkipVerify) {
			bad("kafka.tls.enabled", "tls options are set but tls is not enabled; set enabled: true")
		}
		checkFile := func(field, path string) {
			if path == "" {
				return
			}
			if _, err := os.Stat(path); err != nil {
				bad(field, "file %q: %v", path, errors.Unwrap(err))
			}
		}
		checkFile("kafka.tls.ca_file", k.TLS.CAFile)
		checkFile("kafka.tls.cert_file", k.TLS.CertFile)
		checkFile("kafka.tls.key_file", k.TLS.KeyFile)
		if (k.TLS.CertFile == "") != (k.TLS.KeyFile == "") {
			bad("kafka.tls", "cert_file and key_file go together; set both for a client certificate, or neither")
		}
		switch k.SASL.Mechanism {
		case "":
			if k.SASL.Username != "" || k.SASL.Password != "" {
				bad("kafka.sasl.mechanism", "username/password set without a mechanism; set plain, scram-sha-256 or scram-sha-512")
			}
		case SASLPlain, SASLScram256, SASLScram512:
			if k.SASL.Username == "" {
				bad("kafka.sasl.username", "must not be empty with mechanism %s", k.SASL.Mechanism)
			}
			if k.SASL.Password == "" {
				bad("kafka.sasl.password", "must not be empty with mechanism %s; use ${ENV_VAR} to keep it out of the file", k.SASL.Mechanism)
			}
		default:
			bad("kafka.sasl.mechanism", "%q is not plain, scram-sha-256 or scram-sha-512", k.SASL.Mechanism)
		}
	}
	for i, f := range c.Files {
		field := fmt.Sprintf("files[%d]", i)
		if f.Path == "" {
			bad(field+".path", "must not be empty; set a file or a directory")
		} else if fi, err := os.Stat(f.Path); err != nil && !f.Follow {
			bad(field+".path", "%q: %v", f.Path, errors.Unwrap(err))
		} else if err == nil && fi.IsDir() && f.Follow {
			bad(field+".follow", "%q is a directory; follow works on a single file", f.Path)
		}
		kind := f.Kind
		if kind == "" {
			kind = "app"
		}
		if _, err := ParseKind(kind); err != nil {
			bad(field+".kind", "%v", err)
		}
		switch f.StartAt {
		case "", StartBegin:
		case StartEnd:
			if !f.Follow {
				bad(field+".start_at", "end only makes sense with follow: true")
			}
		default:
			bad(field+".start_at", "%q is not beginning or end", f.StartAt)
		}
	}
	if c.StateFile != "" {
		if fi, err := os.Stat(c.StateFile); err == nil && !fi.Mode().IsRegular() {
			bad("state_file", "%q is not a regular file; point it at a file tokenwatch may create", c.StateFile)
		} else if _, err := os.Stat(filepath.Dir(c.StateFile)); err != nil {
			bad("state_file", "directory of %q: %v; create it or choose another path", c.StateFile, errors.Unwrap(err))
		}
	}
	if c.Stdin.Enabled {
		if _, err := ParseKind(c.Stdin.Kind); err != nil {
			bad("stdin.kind", "%v", err)
		}
	}
	return errors.Join(errs...)
}

// Limits returns the file/stdin batching limits of c.
func (c Config) Limits() Limits {
	return Limits{
		MaxRecordBytes: c.MaxRecordBytes,
		BatchSize:      c.BatchSize,
		BatchBytes:     c.BatchBytes,
		FlushInterval:  c.FlushInterval,
		PollInterval:   c.PollInterval,
	}
}

// Open builds the configured sources; several are merged with Multi (ahead
// batches read ahead per source). stdin is the reader used for stdin.enabled.
func Open(c Config, stdin io.Reader, ahead int) (Source, error) {
	var srcs []Source
	closeAll := func() {
		for _, s := range srcs {
			s.Close()
		}
	}
	if c.KafkaEnabled() {
		k, err := NewKafkaSource(c.Kafka, c.MaxRecordBytes)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, k)
	}
	var cps *Checkpoints
	if c.StateFile != "" && len(c.Files) > 0 {
		var err error
		if cps, err = LoadCheckpoints(c.StateFile); err != nil {
			closeAll()
			return nil, err
		}
	}
	for i, f := range c.Files {
		kind := f.Kind
		if kind == "" {
			kind = "app"
		}
		k, err := ParseKind(kind)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("ingest.files[%d].kind: %w", i, err)
		}
		var opts []FileOption
		if cps != nil {
			opts = append(opts, WithCheckpoints(cps))
		}
		s, err := NewFileSource(f, k, c.Limits(), opts...)
		if err != nil {
			closeAll()
			return nil, err
		}
		srcs = append(srcs, s)
	}
	if c.Stdin.Enabled {
		k, err := ParseKind(c.Stdin.Kind)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("ingest.stdin.kind: %w", err)
		}
		srcs = append(srcs, NewReaderSource("-", stdin, k, c.Limits()))
	}
	switch len(srcs) {
	case 0:
		return nil, errors.New("ingest: no source configured; set ingest.kafka (brokers and topics), ingest.files or ingest.stdin.enabled")
	case 1:
		return srcs[0], nil
	}
	return NewMulti(srcs, ahead), nil
}

// String names a source configuration for logs (never secrets).
func (c Config) String() string {
	var parts []string
	if c.KafkaEnabled() {
		parts = append(parts, fmt.Sprintf("kafka(%s, group %s, %d topics)", strings.Join(c.Kafka.Brokers, ","), c.Kafka.GroupID, len(c.Kafka.Topics)))
	}
	for _, f := range c.Files {
		parts = append(parts, "file("+f.Path+")")
	}
	if c.Stdin.Enabled {
		parts = append(parts, "stdin")
	}
	return strings.Join(parts, " + ")
}
