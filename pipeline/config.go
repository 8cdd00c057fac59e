package pipeline

import (
	"errors"
	"fmt"
	"time"
)

// Config is the `pipeline` section of the configuration file.
type Config struct {
	// InFlight is how many batches may be read ahead while one is processed
	// (at least 1). Each holds up to a source batch of records in memory.
	InFlight int `yaml:"in_flight"`
	// Retry governs how a failed stage or commit is retried.
	Retry RetryConfig `yaml:"retry"`
	// ShutdownTimeout bounds how long, after SIGINT/SIGTERM, the batches already
	// read may take to finish and be committed.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// RetryConfig is exponential backoff with a bounded number of attempts.
type RetryConfig struct {
	// MaxAttempts counts the first try; 1 disables retries.
	MaxAttempts    int           `yaml:"max_attempts"`
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
}

// DefaultConfig returns 2 batches in flight, 8 attempts from 200ms to 10s
// backoff (about 40 s in all), and 30 s to shut down.
func DefaultConfig() Config {
	return Config{
		InFlight:        2,
		Retry:           RetryConfig{MaxAttempts: 8, InitialBackoff: 200 * time.Millisecond, MaxBackoff: 10 * time.Second},
		ShutdownTimeout: 30 * time.Second,
	}
}

// Validate reports every mistake, naming the field path and the fix.
func (c Config) Validate() error {
	var errs []error
	if c.InFlight < 1 || c.InFlight > 64 {
		errs = append(errs, fmt.Errorf("pipeline.in_flight: %d is out of range; set 1 to 64 (default 2)", c.InFlight))
	}
	if c.Retry.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("pipeline.retry.max_attempts: must be at least 1 (1 = no retry), got %d", c.Retry.MaxAttempts))
	}
	if c.Retry.InitialBackoff <= 0 {
		errs = append(errs, fmt.Errorf("pipeline.retry.initial_backoff: must be a positive duration such as 200ms, got %s", c.Retry.InitialBackoff))
	}
	if c.Retry.MaxBackoff < c.Retry.InitialBackoff {
		errs = append(errs, fmt.Errorf("pipeline.retry.max_backoff: %s is shorter than initial_backoff %s; raise it", c.Retry.MaxBackoff, c.Retry.InitialBackoff))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("pipeline.shutdown_timeout: must be a positive duration such as 30s, got %s", c.ShutdownTimeout))
	}
	return errors.Join(errs...)
}

// OutputConfig is the `output` section: where findings go besides the stores
// and alert sinks other sections configure.
type OutputConfig struct {
	// FindingsFile receives one JSON line per finding (see Sink); "" writes
	// none, "-" writes to stdout. Appended to, never truncated.
	FindingsFile string `yaml:"findings_file"`
	// Fsync makes the sink fsync the file after each batch, before the batch
	// is committed, so findings survive a machine crash, not only a process kill.
	Fsync bool `yaml:"fsync"`
}

// DefaultOutputConfig writes no findings file.
func DefaultOutputConfig() OutputConfig { return OutputConfig{} }

// Validate reports every mistake in the output section.
func (c OutputConfig) Validate() error {
	if c.Fsync && c.FindingsFile == "-" {
		return errors.New("output.fsync: stdout cannot be fsynced; set fsync: false or write findings_file to a file")
	}
	return nil
}
