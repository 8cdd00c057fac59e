package parse

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// formatID is a detected record format.
type formatID uint8

const (
	fmtPlain formatID = iota
	fmtJSON
	fmtNginxJSON
	fmtECS
	fmtEnvoyJSON
	fmtOkta
	fmtAuth0
	fmtCaddy
	fmtCombined
	fmtCommon
	fmtIIS
	fmtEnvoy
	fmtLogfmt
	numFormats
)

// formatNames are the values of Fields.Format (and of the format label).
var formatNames = [numFormats]string{
	fmtPlain:     "plain",
	fmtJSON:      "json",
	fmtNginxJSON: "nginx_json",
	fmtECS:       "ecs",
	fmtEnvoyJSON: "envoy_json",
	fmtOkta:      "okta",
	fmtAuth0:     "auth0",
	fmtCaddy:     "caddy",
	fmtCombined:  "combined",
	fmtCommon:    "common",
	fmtIIS:       "iis",
	fmtEnvoy:     "envoy",
	fmtLogfmt:    "logfmt",
}

// syslogNames are the formats of messages inside a syslog envelope: "syslog" for
// plain messages, "syslog+<format>" otherwise.
var syslogNames = func() (n [numFormats]string) {
	for i, s := range formatNames {
		n[i] = "syslog+" + s
	}
	n[fmtPlain] = "syslog"
	return n
}()

func formatName(f formatID, syslog bool) string {
	if syslog {
		return syslogNames[f]
	}
	return formatNames[f]
}

var (
	parsedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_ingest_records_parsed_total",
		Help: "Records whose fields were parsed, by detected format.",
	}, []string{"format"})
	malformedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenwatch_ingest_records_malformed_total",
		Help: "Records that were malformed (bad JSON, too deep, invalid UTF-8, binary, bad revocation events), by reason; they were parsed as plain text.",
	}, []string{"reason"})

	// Handles resolved once: label values come from fixed sets.
	parsedHandles = func() map[string]prometheus.Counter {
		m := make(map[string]prometheus.Counter, 2*numFormats)
		for i := range formatNames {
			m[formatNames[i]] = parsedTotal.WithLabelValues(formatNames[i])
			m[syslogNames[i]] = parsedTotal.WithLabelValues(syslogNames[i])
		}
		return m
	}()
	malformedHandles = func() map[string]prometheus.Counter {
		m := map[string]prometheus.Counter{}
		for _, r := range []string{reasonJSONSyntax, reasonJSONDepth, reasonJSONTrailing, reasonInvalidUTF8,
			reasonBinary, reasonSyslog, reasonRevocation, reasonNoFP, reasonInternal} {
			m[r] = malformedTotal.WithLabelValues(r)
		}
		return m
	}()
)

func parsedCounter(format string) prometheus.Counter {
	if c, ok := parsedHandles[format]; ok {
		return c
	}
	panic("BUG: unknown parse format " + format)
}

func malformedCounter(reason string) prometheus.Counter {
	if c, ok := malformedHandles[reason]; ok {
		return c
	}
	panic("BUG: unknown malformed reason " + reason)
}
