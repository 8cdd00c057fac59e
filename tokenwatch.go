// Package tokenwatch holds the shared vocabulary of the tokenwatch pipeline: the
// records that ingest produces, the findings the scanner attaches to them, the token
// uses the anomaly engine consumes, the alerts it emits, and the Batch and Stage
// types every stage is written against.
//
// The package owns types and their contracts only. It does no I/O and imports no
// other package of this module, so every package can depend on it.
//
// Data flow (see README.md):
//
//	ingest -> detect (scan) -> enrich -> detect/anomaly -> store + alerts
//
// A token never appears in clear in anything these types carry out of the process:
// a Finding names its credential by Fingerprint and Redacted preview only; the
// credential bytes stay in Record.Raw, which is never written anywhere. The one
// exception is Finding.Sealed, the AES-256-GCM sealed value for RFC 7009 revocation.
package tokenwatch

import (
	"context"
	"encoding/hex"
	"net/netip"
	"time"
)

// Stage is one step of the pipeline.
//
// Process works on b in place. It must not retain b, or any slice into it, after it
// returns. A non-nil error fails the whole batch (context cancelled, sink down): the
// batch is retried or the pipeline stops, and its source offsets are not committed.
// Per-record problems are counted and noted on the record, never returned.
type Stage interface {
	Process(ctx context.Context, b *Batch) error
}

// StageFunc adapts a function to the Stage interface.
type StageFunc func(ctx context.Context, b *Batch) error

// Process calls f(ctx, b).
func (f StageFunc) Process(ctx context.Context, b *Batch) error { return f(ctx, b) }

// Batch is the unit of work of every stage. Batches are pooled: Reset keeps the
// capacity of every slice so a steady-state pipeline allocates nothing per clean record.
type Batch struct {
	// Records are the input records, in source order.
	Records []Record
	// Uses are the token uses derived from Records that carry findings, filled by
	// the use builder after scan and enrichment.
	Uses []TokenUse
	// Alerts are the alerts raised while processing this batch.
	Alerts []Alert
	// Revocations are revocation events seen in this batch (from a revocation
	// topic or file); the anomaly engine applies them before Uses.
	Revocations []Revocation
}

// Reset empties b for reuse, keeping capacity. Record.Raw slices are dropped, not
// cleared: their memory belongs to the source.
func (b *Batch) Reset() {
	for i := range b.Records {
		b.Records[i].Reset()
	}
	b.Records = b.Records[:0]
	clear(b.Uses)
	b.Uses = b.Uses[:0]
	clear(b.Alerts)
	b.Alerts = b.Alerts[:0]
	clear(b.Revocations)
	b.Revocations = b.Revocations[:0]
}

// Bytes returns the total size of the raw records in b.
func (b *Batch) Bytes() int {
	n := 0
	for i := range b.Records {
		n += len(b.Records[i].Raw)
	}
	return n
}

// Origin says where a record came from: a Kafka topic/partition/offset, or a
// file and 1-based line number. It travels with findings, uses and alert evidence.
type Origin struct {
	// Source is the Kafka topic, the file path, or "-" for stdin.
	Source string `json:"source"`
	// Partition is the Kafka partition, -1 for files.
	Partition int32 `json:"partition"`
	// Offset is the Kafka offset, or for files the 1-based line number.
	Offset int64 `json:"offset"`
}

// IsKafka reports whether o names a Kafka record rather than a file line.
func (o Origin) IsKafka() bool { return o.Partition >= 0 }

// RecordFlags note per-record conditions that were counted and tolerated.
type RecordFlags uint8

const (
	// FlagMalformed: the record looked like a structured format but did not parse;
	// it was scanned as plain text.
	FlagMalformed RecordFlags = 1 << iota
	// FlagTruncated: the record exceeded the maximum record size and was cut.
	FlagTruncated
	// FlagBinary: the record holds binary data (NUL bytes or mostly non-text).
	FlagBinary
	// FlagInvalidUTF8: the record is not valid UTF-8.
	FlagInvalidUTF8
)

// Record is one log record: a Kafka message or a line of a file.
//
// Raw belongs to the source and is valid only until the batch is Reset; stages
// must copy out what they keep. Raw is never written anywhere by tokenwatch
// because it may hold credentials in clear.
type Record struct {
	Origin
	// Raw is the record's bytes, without the line terminator.
	Raw []byte
	// Kind is "auth" for logs of systems that accept tokens (API gateways,
	// reverse proxies, IdPs) and "app" for application logs, where any
	// credential is a leak. It comes from the source configuration.
	Kind SourceKind
	// Fields are the parsed fields. They are filled only for records that carry
	// findings (Parsed reports whether they are), so clean records cost no parsing.
	Fields Fields
	// Findings are the credentials found in Raw.
	Findings []Finding
	Flags    RecordFlags
	// Parsed is true once Fields has been filled.
	Parsed bool
}

// Reset empties r for reuse, keeping the capacity of Findings.
func (r *Record) Reset() {
	f := r.Findings
	clear(f)
	*r = Record{Findings: f[:0]}
}

// SourceKind tells auth logs from application logs.
type SourceKind uint8

const (
	// KindAuth marks logs of systems that legitimately receive tokens: a token
	// there is a use.
	KindAuth SourceKind = iota
	// KindApp marks application logs: a token there is a leak.
	KindApp
	// KindRevocation marks a stream of revocation events (JSON lines with jti
	// and/or token and a time); its records become Batch.Revocations.
	KindRevocation
)

func (k SourceKind) String() string {
	switch k {
	case KindApp:
		return "app"
	case KindRevocation:
		return "revocation"
	}
	return "auth"
}

// Fields are the values ingest extracts from a record. Zero values mean unknown.
type Fields struct {
	// Format is the detected log format: "json", "ecs", "envoy", "nginx",
	// "logfmt", "syslog", "plain", …
	Format string
	// Time is the event time; zero if the record carried none (then the
	// ingest time is used for token uses).
	Time time.Time
	// IP is the client address, after trusted-proxy X-Forwarded-For handling.
	IP        netip.Addr
	UserAgent string
	User      string
	Method    string
	Path      string
	Status    int
	Service   string
	Host      string
	// DPoPProof is true when the record shows a DPoP proof header was sent;
	// HeadersLogged is true when the record carries request headers at all, so
	// the absence of a DPoP header means something.
	DPoPProof     bool
	HeadersLogged bool
}

// Fingerprint identifies a credential without revealing it: the first 16 bytes
// of HMAC-SHA256(key, token). Its text form is 32 lowercase hex digits.
type Fingerprint [16]byte

// String returns the lowercase hex form used in every output.
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// IsZero reports whether f is unset.
func (f Fingerprint) IsZero() bool { return f == Fingerprint{} }

// AppendHex appends the lowercase hex form of f to dst.
func (f Fingerprint) AppendHex(dst []byte) []byte { return hex.AppendEncode(dst, f[:]) }

// MarshalText implements encoding.TextMarshaler (lowercase hex).
func (f Fingerprint) MarshalText() ([]byte, error) { return f.AppendHex(nil), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (f *Fingerprint) UnmarshalText(b []byte) error {
	var tmp Fingerprint
	if hex.DecodedLen(len(b)) != len(tmp) {
		return errBadFingerprint
	}
	if _, err := hex.Decode(tmp[:], b); err != nil {
		return errBadFingerprint
	}
	*f = tmp
	return nil
}

type fpError string

func (e fpError) Error() string { return string(e) }

const errBadFingerprint = fpError("fingerprint must be 32 hex digits")

// ParseFingerprint parses the 32-hex-digit form.
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	err := f.UnmarshalText([]byte(s))
	return f, err
}

// Finding is one credential found in a record. It never holds the credential
// itself: Start/End locate it in the record's Raw bytes.
type Finding struct {
	// Kind is the credential family: "jwt", "jwe", "bearer", "basic",
	// "oauth_access_token", "github_pat", … (see detect for the full list).
	Kind string `json:"kind"`
	// Rule is the detection rule that matched, e.g. "jwt.compact",
	// "authorization.bearer", "github.classic_pat".
	Rule string `json:"rule"`
	// Start and End are 0-based byte offsets of the secret value in Raw, End
	// exclusive, value only (not "Bearer ", not "access_token=").
	Start int `json:"start"`
	End   int `json:"end"`
	// Fingerprint is HMAC-SHA256(key, token)[:16].
	Fingerprint Fingerprint `json:"fingerprint"`
	// Redacted keeps at most the first 6 and last 4 characters (fewer for
	// short tokens), e.g. "eyJhbG…Qssw".
	Redacted string `json:"redacted"`
	// Scheme is the HTTP authorization scheme the token was presented with
	// ("Bearer", "DPoP", "Basic"), or "" when it was not in an Authorization
	// header.
	Scheme string `json:"scheme,omitempty"`
	// Param is the field or parameter name that carried the token
	// ("access_token", "refresh_token", "Cookie:session", …), if any.
	Param string `json:"param,omitempty"`
	// JWT holds the decoded, non-secret header and claims of a JWT.
	JWT *JWTInfo `json:"jwt,omitempty"`
	// Sealed is the credential sealed with AES-256-GCM for RFC 7009 revocation;
	// set only when revocation is configured for its issuer. Never logged.
	Sealed []byte `json:"-"`
}

// JWTInfo is the decoded header and the non-secret claims of a JWT. No signature
// is verified: these are what the token claims, for triage and correlation.
type JWTInfo struct {
	Alg      string   `json:"alg,omitempty"`
	Kid      string   `json:"kid,omitempty"`
	Typ      string   `json:"typ,omitempty"`
	Enc      string   `json:"enc,omitempty"` // JWE only
	Iss      string   `json:"iss,omitempty"`
	Sub      string   `json:"sub,omitempty"`
	Aud      []string `json:"aud,omitempty"`
	Exp      int64    `json:"exp,omitempty"`
	Iat      int64    `json:"iat,omitempty"`
	Nbf      int64    `json:"nbf,omitempty"`
	Jti      string   `json:"jti,omitempty"`
	ClientID string   `json:"client_id,omitempty"` // client_id, or azp when absent
	Scope    []string `json:"scope,omitempty"`     // scope (space separated) or scp
	// Nonce and AtHash are set when present (ID-token markers); CnfJKT and
	// CnfX5T are the sender-constraint confirmation claims (DPoP / mTLS).
	HasNonce  bool   `json:"has_nonce,omitempty"`
	HasAtHash bool   `json:"has_at_hash,omitempty"`
	CnfJKT    string `json:"cnf_jkt,omitempty"`
	CnfX5T    string `json:"cnf_x5t,omitempty"`
	// Derived flags.
	Expired         bool  `json:"expired"`
	AlgNone         bool  `json:"alg_none"`
	LifetimeSeconds int64 `json:"lifetime_seconds,omitempty"`
}

// ExpTime returns exp as a time, or the zero time when exp is unknown.
func (j *JWTInfo) ExpTime() time.Time {
	if j == nil || j.Exp == 0 {
		return time.Time{}
	}
	return time.Unix(j.Exp, 0).UTC()
}

// Geo is what enrichment knows of an IP address.
type Geo struct {
	ASN       uint32  `json:"asn,omitempty"`
	ASOrg     string  `json:"as_org,omitempty"`
	Country   string  `json:"country,omitempty"`   // ISO 3166-1 alpha-2
	Continent string  `json:"continent,omitempty"` // two-letter code
	City      string  `json:"city,omitempty"`
	Lat       float64 `json:"lat,omitempty"`
	Lon       float64 `json:"lon,omitempty"`
	// RadiusKm is the GeoIP accuracy radius; 0 when unknown.
	RadiusKm uint16 `json:"accuracy_radius_km,omitempty"`
	// HasLocation is true when Lat/Lon are meaningful.
	HasLocation bool `json:"-"`
	// Label names special ranges that are labelled rather than looked up:
	// "private", "loopback", "cgnat", "documentation", "link-local",
	// "multicast", "unspecified"; "" for public addresses.
	Label string `json:"label,omitempty"`
}

// TokenUse is one sighting of a credential: the record it came from, the client
// that presented it and where that client is. Strings are copies, safe to keep.
type TokenUse struct {
	Fingerprint Fingerprint
	Kind        string // credential kind (Finding.Kind)
	Rule        string
	Redacted    string
	// Leak is true for a sighting in an application log (a leak), false for a
	// use in an auth log.
	Leak bool
	// Time is the event time (or ingest time when the record had none).
	Time      time.Time
	IP        netip.Addr
	Geo       Geo
	UserAgent string
	User      string
	Method    string
	Path      string
	Status    int
	Service   string
	Host      string
	Scheme    string
	Param     string
	// DPoPProof / HeadersLogged: see Fields.
	DPoPProof     bool
	HeadersLogged bool
	// JWT claims, when the credential is a JWT.
	JWT *JWTInfo
	// Sealed: see Finding.Sealed.
	Sealed []byte
	Origin Origin
	// Index is the finding's index within its record, for deterministic ids.
	Index int
}

// Revocation says that a token (by fingerprint) or a JWT (by jti, optionally
// with issuer) was revoked at Time.
type Revocation struct {
	Fingerprint Fingerprint
	JTI         string
	Issuer      string
	Time        time.Time
	// Reason is free text from the revocation event ("logout", "tokenwatch").
	Reason string
	Origin Origin
}

// Severity of an alert.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityLow      Severity = "low"
	SeverityMedium   Severity = "medium"
	SeverityHigh     Severity = "high"
	SeverityCritical Severity = "critical"
)

// Alert types (DESIGN.md contract). Posture findings from the policy engine use
// further types documented in the README.
const (
	AlertTokenLeak            = "token_leak"
	AlertImpossibleTravel     = "impossible_travel"
	AlertConcurrentReplay     = "concurrent_replay"
	AlertLeakedTokenReplay    = "leaked_token_replay"
	AlertPostRevocationUse    = "post_revocation_use"
	AlertExpiredTokenAccepted = "expired_token_accepted"
	AlertAlgNoneAccepted      = "alg_none_accepted"
)

// Alert is the user-facing alert contract (DESIGN.md): webhook bodies, the outbox
// topic, the alerts table and --alerts-file all carry this JSON.
type Alert struct {
	// ID is deterministic: the same triggering event always gives the same id,
	// so a replay after a crash is deduplicated downstream.
	ID          string   `json:"id"`
	Type        string   `json:"type"`
	Severity    Severity `json:"severity"`
	Fingerprint string   `json:"fingerprint"`
	Kind        string   `json:"kind,omitempty"`
	Redacted    string   `json:"redacted,omitempty"`
	JTI         string   `json:"jti,omitempty"`
	Issuer      string   `json:"issuer,omitempty"`
	Subject     string   `json:"subject,omitempty"`
	ClientID    string   `json:"client_id,omitempty"`
	Service     string   `json:"service,omitempty"`
	// EventTime is the event time of the event that triggered the alert.
	EventTime  time.Time `json:"event_time"`
	DetectedAt time.Time `json:"detected_at"`
	// Evidence lists the uses involved, oldest first.
	Evidence []Evidence `json:"evidence"`
	// Summary is one sentence an analyst can read.
	Summary string `json:"summary"`
	// Update counts re-raises of the same (type, fingerprint) within the dedupe
	// window: 0 for the first alert, 1.. for updates with grown evidence.
	Update int `json:"update,omitempty"`
	// Sealed: the sealed token for RFC 7009 revocation sinks. Never serialised
	// into alert JSON; the outbox carries it in a separate envelope field.
	Sealed []byte `json:"-"`
}

// Evidence is one token use inside an alert.
type Evidence struct {
	Time      time.Time `json:"time"`
	IP        string    `json:"ip,omitempty"`
	ASN       uint32    `json:"asn,omitempty"`
	ASOrg     string    `json:"as_org,omitempty"`
	Country   string    `json:"country,omitempty"`
	City      string    `json:"city,omitempty"`
	Lat       float64   `json:"lat,omitempty"`
	Lon       float64   `json:"lon,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	Status    int       `json:"status,omitempty"`
	Service   string    `json:"service,omitempty"`
	// Kafka origin.
	Topic     string `json:"topic,omitempty"`
	Partition *int32 `json:"partition,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
	// File origin.
	File string `json:"file,omitempty"`
	Line int64  `json:"line,omitempty"`
}

// EvidenceOf builds the evidence entry for u.
func EvidenceOf(u *TokenUse) Evidence {
	e := Evidence{
		Time:      u.Time.UTC(),
		ASN:       u.Geo.ASN,
		ASOrg:     u.Geo.ASOrg,
		Country:   u.Geo.Country,
		City:      u.Geo.City,
		UserAgent: u.UserAgent,
		Status:    u.Status,
		Service:   u.Service,
	}
	if u.IP.IsValid() {
		e.IP = u.IP.String()
	}
	if u.Geo.HasLocation {
		e.Lat, e.Lon = u.Geo.Lat, u.Geo.Lon
	}
	if u.Origin.IsKafka() {
		p, o := u.Origin.Partition, u.Origin.Offset
		e.Topic, e.Partition, e.Offset = u.Origin.Source, &p, &o
	} else {
		e.File, e.Line = u.Origin.Source, u.Origin.Offset
	}
	return e
}
