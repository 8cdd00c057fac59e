// Package config owns the tokenwatch configuration file: one YAML document whose
// top-level sections map onto each package's own Config (ingest, parse, detect,
// pipeline, output, …). It loads the file (defaults first, then the file over
// them), expands ${ENV} references in string values, rejects unknown keys with
// their line and field path, and validates every section, collecting all
// mistakes rather than stopping at the first.
//
// The package holds no behaviour of the sections themselves: each section's
// defaults and checks live in its package. To add a section: add a field with
// its yaml tag to Config, its default to DefaultConfig, and its Validate call to
// Config.Validate (see the list there).
package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tokenwatch/tokenwatch/alerts"
	"github.com/tokenwatch/tokenwatch/detect"
	"github.com/tokenwatch/tokenwatch/detect/anomaly"
	"github.com/tokenwatch/tokenwatch/enrich"
	"github.com/tokenwatch/tokenwatch/ingest"
	"github.com/tokenwatch/tokenwatch/ingest/parse"
	"github.com/tokenwatch/tokenwatch/pipeline"
	"github.com/tokenwatch/tokenwatch/policy"
	"github.com/tokenwatch/tokenwatch/store"
	"github.com/tokenwatch/tokenwatch/telemetry"
)

// Config is the root of the configuration file.
type Config struct {
	// Ingest configures the sources (Kafka, files, stdin).
	Ingest ingest.Config `yaml:"ingest"`
	// Parse configures log-format detection and field extraction.
	Parse parse.Config `yaml:"parse"`
	// Detect configures the credential scanner and the fingerprint key.
	Detect detect.Config `yaml:"detect"`
	// Pipeline configures batching concurrency, retries and shutdown.
	Pipeline pipeline.Config `yaml:"pipeline"`
	// Output configures the JSON-lines findings file.
	Output pipeline.OutputConfig `yaml:"output"`

	// Sections added by their owners go below, in pipeline order:
	// enrich, anomaly, store, alerts, metrics, policy.

	// Enrich configures the GeoIP/ASN databases (docs/enrich.md).
	Enrich enrich.Config `yaml:"enrich"`
	// Anomaly configures the replay / impossible-use rules and their state (docs/anomaly.md).
	Anomaly anomaly.Config `yaml:"anomaly"`
	// Policy configures the token-hygiene findings and their policy file (docs/policy.md).
	Policy policy.Config `yaml:"policy"`

	// Alerts configures alert policy, routing, sinks, the outbox and delivery.
	Alerts alerts.Config `yaml:"alerts"`

	// ClickHouse configures the store: migrations, retention and the batched
	// writer (docs/store.md). Disabled while clickhouse.addr is empty.
	ClickHouse store.Config `yaml:"clickhouse"`
	// Telemetry configures the /metrics, /healthz and /readyz server (docs/metrics.md).
	Telemetry telemetry.Config `yaml:"telemetry"`
}

// DefaultConfig returns every section's defaults.
func DefaultConfig() Config {
	return Config{
		Ingest:   ingest.DefaultConfig(),
		Parse:    parse.DefaultConfig(),
		Detect:   detect.DefaultConfig(),
		Pipeline: pipeline.DefaultConfig(),
		Output:   pipeline.DefaultOutputConfig(),
		Alerts:   alerts.DefaultConfig(),
		Enrich:   enrich.DefaultConfig(),
		Anomaly:  anomaly.DefaultConfig(),
		Policy:   policy.DefaultConfig(),

		ClickHouse: store.DefaultConfig(),
		Telemetry:  telemetry.DefaultConfig(),
	}
}

// Validate checks every section and returns all mistakes joined; each names
// its field path (e.g. "ingest.kafka.brokers: …"). Problems splits the result
// into one message per mistake.
func (c Config) Validate() error {
	return errors.Join(
		c.Ingest.Validate(),
		c.Parse.Validate(),
		c.Detect.Validate(),
		c.Pipeline.Validate(),
		c.Output.Validate(),
		c.Alerts.Validate(),
		c.Enrich.Validate(),
		c.Anomaly.Validate(),
		c.Policy.Validate(),
		c.ClickHouse.Validate(),
		c.Telemetry.Validate(),
	)
}

// Problems flattens an error from Load or Validate (errors.Join trees) into
// one message per mistake, in order. Multi-line messages are split into lines.
func Problems(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				if x != nil {
					walk(x)
				}
			}
			return
		}
		for _, l := range strings.Split(e.Error(), "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
	}
	walk(err)
	return out
}

// errorList is a multi-error whose parts are each one mistake.
type errorList []error

func (l errorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

func (l errorList) Unwrap() []error { return l }

func (l errorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// sectionf formats a mistake at a line of the file.
func linef(file string, line int, format string, args ...any) error {
	if file == "" {
		return fmt.Errorf("line %d: %s", line, fmt.Sprintf(format, args...))
	}
	return fmt.Errorf("%s:%d: %s", file, line, fmt.Sprintf(format, args...))
}
