package store

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/tokenwatch/tokenwatch"
)

// column is one column of a table being built, stored as a typed slice so an
// INSERT hands whole slices to the driver (no boxing per value).
type column interface {
	name() string
	// values returns rows [i, j) as a slice the driver appends to a column.
	values(i, j int) any
	len() int
	reset()
}

type col[T any] struct {
	n string
	v []T
}

func (c *col[T]) name() string        { return c.n }
func (c *col[T]) values(i, j int) any { return c.v[i:j] }
func (c *col[T]) len() int            { return len(c.v) }
func (c *col[T]) reset()              { clear(c.v); c.v = c.v[:0] }
func (c *col[T]) add(x T)             { c.v = append(c.v, x) }

// table is the columns of one ClickHouse table, in INSERT order.
type table struct {
	name string
	cols []column
	// insert is "INSERT INTO db.name (`c1`, `c2`, …)", built once.
	insert string
}

func newTable(name string, cols ...column) *table {
	return &table{name: name, cols: cols}
}

func (t *table) rows() int { return t.cols[0].len() }

func (t *table) reset() {
	for _, c := range t.cols {
		c.reset()
	}
}

// check panics when the columns of t have different lengths: a builder
// appended to some columns and not others.
func (t *table) check() {
	n := t.cols[0].len()
	for _, c := range t.cols[1:] {
		if c.len() != n {
			panic("BUG: table " + t.name + ": column " + c.name() + " is out of step")
		}
	}
}

// insertSQL returns the INSERT statement with an explicit column list (which
// every ClickHouse version, 18.16 included, accepts, and which keeps DEFAULT
// columns such as inserted_at out of the client's hands).
func (t *table) insertSQL(db string) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO ")
	sb.WriteString(db)
	sb.WriteByte('.')
	sb.WriteString(t.name)
	sb.WriteString(" (")
	for i, c := range t.cols {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('`')
		sb.WriteString(c.name())
		sb.WriteByte('`')
	}
	sb.WriteString(")")
	return sb.String()
}

// RowID is the deterministic id of the row built from the finding at index
// within the record at o: the same record always gives the same id, so a
// replayed Kafka batch writes the same rows.
func RowID(o tokenwatch.Origin, index int) uint64 {
	var buf [8 + 4 + 8 + 8]byte
	h := xxhash.New()
	_, _ = h.WriteString(o.Source)
	binary.LittleEndian.PutUint32(buf[8:], uint32(o.Partition))
	binary.LittleEndian.PutUint64(buf[12:], uint64(o.Offset))
	binary.LittleEndian.PutUint64(buf[20:], uint64(index))
	buf[0] = 0xff // separates Source from the numbers
	_, _ = h.Write(buf[:])
	return h.Sum64()
}

// revocationID is the deterministic id of a revocation row: its origin and
// what it revokes (one record may revoke several tokens).
func revocationID(r *tokenwatch.Revocation, fp string) uint64 {
	h := xxhash.New()
	var buf [12]byte
	binary.LittleEndian.PutUint32(buf[:], uint32(r.Origin.Partition))
	binary.LittleEndian.PutUint64(buf[4:], uint64(r.Origin.Offset))
	_, _ = h.WriteString(r.Origin.Source)
	_, _ = h.Write(buf[:])
	_, _ = h.WriteString(fp)
	_, _ = h.WriteString("\x00")
	_, _ = h.WriteString(r.JTI)
	_, _ = h.WriteString("\x00")
	_, _ = h.WriteString(r.Issuer)
	return h.Sum64()
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// unixTime converts a JWT NumericDate to a DateTime value (0 = unknown).
func unixTime(s int64) time.Time {
	if s <= 0 || s > 4294967295 { // DateTime is UInt32 seconds
		return time.Unix(0, 0).UTC()
	}
	return time.Unix(s, 0).UTC()
}

// clampTime keeps t inside the DateTime64(3) range tokenwatch writes
// (1970..2105); a zero or absurd event time is stored as the epoch.
func clampTime(t time.Time) time.Time {
	if t.Before(time.Unix(0, 0)) || t.After(time.Unix(4294967295, 0)) {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC()
}

func u16(n int) uint16 {
	if n < 0 || n > 65535 {
		return 0
	}
	return uint16(n)
}

// tokenEvents is the token_events table.
type tokenEvents struct {
	table
	rowID                               col[uint64]
	fingerprint                         col[string]
	eventTime                           col[time.Time]
	leak                                col[uint8]
	kind, rule, redacted                col[string]
	ip, ipLabel                         col[string]
	asn                                 col[uint32]
	asOrg, country, continent, city     col[string]
	lat, lon                            col[float64]
	hasLocation                         col[uint8]
	radius                              col[uint16]
	userAgent, user, method, path       col[string]
	status                              col[uint16]
	service, host, scheme, param        col[string]
	dpop, headersLogged                 col[uint8]
	alg, issuer, subject, clientID, jti col[string]
	aud, scope                          col[[]string]
	exp, iat                            col[time.Time]
	lifetime                            col[int64]
	expired, senderConstrained          col[uint8]
	source                              col[string]
	partition                           col[int32]
	offset                              col[int64]
}

func newTokenEvents() *tokenEvents {
	t := &tokenEvents{}
	t.table = *newTable("token_events",
		named(&t.rowID, "row_id"), named(&t.fingerprint, "fingerprint"), named(&t.eventTime, "event_time"),
		named(&t.leak, "leak"), named(&t.kind, "kind"), named(&t.rule, "rule"), named(&t.redacted, "redacted"),
		named(&t.ip, "ip"), named(&t.ipLabel, "ip_label"), named(&t.asn, "asn"), named(&t.asOrg, "as_org"),
		named(&t.country, "country"), named(&t.continent, "continent"), named(&t.city, "city"),
		named(&t.lat, "lat"), named(&t.lon, "lon"), named(&t.hasLocation, "has_location"),
		named(&t.radius, "accuracy_radius"), named(&t.userAgent, "user_agent"), named(&t.user, "user"),
		named(&t.method, "method"), named(&t.path, "path"), named(&t.status, "status"),
		named(&t.service, "service"), named(&t.host, "host"), named(&t.scheme, "scheme"), named(&t.param, "param"),
		named(&t.dpop, "dpop_proof"), named(&t.headersLogged, "headers_logged"),
		named(&t.alg, "alg"), named(&t.issuer, "issuer"), named(&t.subject, "subject"),
		named(&t.clientID, "client_id"), named(&t.jti, "jti"), named(&t.aud, "aud"), named(&t.scope, "scope"),
		named(&t.exp, "exp"), named(&t.iat, "iat"), named(&t.lifetime, "lifetime"),
		named(&t.expired, "expired"), named(&t.senderConstrained, "sender_constrained"),
		named(&t.source, "source"), named(&t.partition, "partition"), named(&t.offset, "offset"),
	)
	return t
}

func named[T any](c *col[T], n string) column { c.n = n; return c }

var emptyJWT tokenwatch.JWTInfo

func (t *tokenEvents) add(u *tokenwatch.TokenUse) {
	j := u.JWT
	if j == nil {
		j = &emptyJWT
	}
	t.rowID.add(RowID(u.Origin, u.Index))
	t.fingerprint.add(u.Fingerprint.String())
	t.eventTime.add(clampTime(u.Time))
	t.leak.add(b2u(u.Leak))
	t.kind.add(u.Kind)
	t.rule.add(u.Rule)
	t.redacted.add(u.Redacted)
	ip := "::"
	if u.IP.IsValid() {
		ip = u.IP.String()
	}
	t.ip.add(ip)
	t.ipLabel.add(u.Geo.Label)
	t.asn.add(u.Geo.ASN)
	t.asOrg.add(u.Geo.ASOrg)
	t.country.add(u.Geo.Country)
	t.continent.add(u.Geo.Continent)
	t.city.add(u.Geo.City)
	if u.Geo.HasLocation {
		t.lat.add(u.Geo.Lat)
		t.lon.add(u.Geo.Lon)
	} else {
		t.lat.add(0)
		t.lon.add(0)
	}
	t.hasLocation.add(b2u(u.Geo.HasLocation))
	t.radius.add(u.Geo.RadiusKm)
	t.userAgent.add(u.UserAgent)
	t.user.add(u.User)
	t.method.add(u.Method)
	t.path.add(u.Path)
	t.status.add(u16(u.Status))
	t.service.add(u.Service)
	t.host.add(u.Host)
	t.scheme.add(u.Scheme)
	t.param.add(u.Param)
	t.dpop.add(b2u(u.DPoPProof))
	t.headersLogged.add(b2u(u.HeadersLogged))
	t.alg.add(j.Alg)
	t.issuer.add(j.Iss)
	t.subject.add(j.Sub)
	t.clientID.add(j.ClientID)
	t.jti.add(j.Jti)
	t.aud.add(nonNil(j.Aud))
	t.scope.add(nonNil(j.Scope))
	t.exp.add(unixTime(j.Exp))
	t.iat.add(unixTime(j.Iat))
	t.lifetime.add(lifetime(j))
	t.expired.add(b2u(j.Expired))
	t.senderConstrained.add(b2u(j.CnfJKT != "" || j.CnfX5T != ""))
	t.source.add(u.Origin.Source)
	t.partition.add(u.Origin.Partition)
	t.offset.add(u.Origin.Offset)
}

func lifetime(j *tokenwatch.JWTInfo) int64 {
	if j.LifetimeSeconds != 0 {
		return j.LifetimeSeconds
	}
	if j.Exp > 0 && j.Iat > 0 {
		return j.Exp - j.Iat
	}
	return 0
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// findings is the findings table (leaks: uses with Leak set).
type findings struct {
	table
	rowID                                  col[uint64]
	fingerprint                            col[string]
	eventTime                              col[time.Time]
	kind, rule, redacted, service, host    col[string]
	scheme, param, alg, kid, typ, iss, sub col[string]
	aud                                    col[[]string]
	exp, iat                               col[time.Time]
	jti, clientID                          col[string]
	scope                                  col[[]string]
	expired, algNone                       col[uint8]
	lifetime                               col[int64]
	source                                 col[string]
	partition                              col[int32]
	offset                                 col[int64]
}

func newFindings() *findings {
	t := &findings{}
	t.table = *newTable("findings",
		named(&t.rowID, "row_id"), named(&t.fingerprint, "fingerprint"), named(&t.eventTime, "event_time"),
		named(&t.kind, "kind"), named(&t.rule, "rule"), named(&t.redacted, "redacted"),
		named(&t.service, "service"), named(&t.host, "host"), named(&t.scheme, "scheme"), named(&t.param, "param"),
		named(&t.alg, "alg"), named(&t.kid, "kid"), named(&t.typ, "typ"), named(&t.iss, "iss"), named(&t.sub, "sub"),
		named(&t.aud, "aud"), named(&t.exp, "exp"), named(&t.iat, "iat"), named(&t.jti, "jti"),
		named(&t.clientID, "client_id"), named(&t.scope, "scope"), named(&t.expired, "expired"),
		named(&t.algNone, "alg_none"), named(&t.lifetime, "lifetime"),
		named(&t.source, "source"), named(&t.partition, "partition"), named(&t.offset, "offset"),
	)
	return t
}

func (t *findings) add(u *tokenwatch.TokenUse) {
	j := u.JWT
	if j == nil {
		j = &emptyJWT
	}
	t.rowID.add(RowID(u.Origin, u.Index))
	t.fingerprint.add(u.Fingerprint.String())
	t.eventTime.add(clampTime(u.Time))
	t.kind.add(u.Kind)
	t.rule.add(u.Rule)
	t.redacted.add(u.Redacted)
	t.service.add(u.Service)
	t.host.add(u.Host)
	t.scheme.add(u.Scheme)
	t.param.add(u.Param)
	t.alg.add(j.Alg)
	t.kid.add(j.Kid)
	t.typ.add(j.Typ)
	t.iss.add(j.Iss)
	t.sub.add(j.Sub)
	t.aud.add(nonNil(j.Aud))
	t.exp.add(unixTime(j.Exp))
	t.iat.add(unixTime(j.Iat))
	t.jti.add(j.Jti)
	t.clientID.add(j.ClientID)
	t.scope.add(nonNil(j.Scope))
	t.expired.add(b2u(j.Expired))
	t.algNone.add(b2u(j.AlgNone))
	t.lifetime.add(lifetime(j))
	t.source.add(u.Origin.Source)
	t.partition.add(u.Origin.Partition)
	t.offset.add(u.Origin.Offset)
}

// alerts is the alerts table.
type alertRows struct {
	table
	id                                                 col[string]
	version                                            col[uint64]
	typ, severity, status, fingerprint, kind, redacted col[string]
	jti, issuer, subject, clientID, service            col[string]
	eventTime, detectedAt                              col[time.Time]
	summary, evidence                                  col[string]
	evidenceCount                                      col[uint16]
	updateCount                                        col[uint32]
}

// Alert statuses in the alerts table. The writer writes StatusOpen; an
// analyst or a SOAR closes an alert by inserting its row again with
// StatusClosed and a larger version (docs/store.md).
const (
	StatusOpen   = "open"
	StatusClosed = "closed"
)

func newAlerts() *alertRows {
	t := &alertRows{}
	t.table = *newTable("alerts",
		named(&t.id, "id"), named(&t.version, "version"), named(&t.typ, "type"), named(&t.severity, "severity"),
		named(&t.status, "status"), named(&t.fingerprint, "fingerprint"), named(&t.kind, "kind"),
		named(&t.redacted, "redacted"), named(&t.jti, "jti"), named(&t.issuer, "issuer"),
		named(&t.subject, "subject"), named(&t.clientID, "client_id"), named(&t.service, "service"),
		named(&t.eventTime, "event_time"), named(&t.detectedAt, "detected_at"), named(&t.summary, "summary"),
		named(&t.evidence, "evidence"), named(&t.evidenceCount, "evidence_count"), named(&t.updateCount, "update_count"),
	)
	return t
}

// AlertVersion is the ReplacingMergeTree version of an alert row: the update
// counter in the high bits, so a re-raise always supersedes the alert it
// grows, and the detection time in milliseconds below it.
func AlertVersion(a *tokenwatch.Alert) uint64 {
	ms := a.DetectedAt.UnixMilli()
	if ms < 0 {
		ms = 0
	}
	return uint64(a.Update)<<44 | uint64(ms)&(1<<44-1)
}

func (t *alertRows) add(a *tokenwatch.Alert) error {
	ev := a.Evidence
	if ev == nil {
		ev = []tokenwatch.Evidence{}
	}
	js, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	t.id.add(a.ID)
	t.version.add(AlertVersion(a))
	t.typ.add(a.Type)
	t.severity.add(string(a.Severity))
	t.status.add(StatusOpen)
	t.fingerprint.add(a.Fingerprint)
	t.kind.add(a.Kind)
	t.redacted.add(a.Redacted)
	t.jti.add(a.JTI)
	t.issuer.add(a.Issuer)
	t.subject.add(a.Subject)
	t.clientID.add(a.ClientID)
	t.service.add(a.Service)
	t.eventTime.add(clampTime(a.EventTime))
	t.detectedAt.add(clampTime(a.DetectedAt))
	t.summary.add(a.Summary)
	t.evidence.add(string(js))
	t.evidenceCount.add(u16(len(a.Evidence)))
	t.updateCount.add(uint32(max(a.Update, 0)))
	return nil
}

// revocations is the revocations table.
type revocations struct {
	table
	rowID                    col[uint64]
	fingerprint, jti, issuer col[string]
	revokedAt                col[time.Time]
	reason, source           col[string]
	partition                col[int32]
	offset                   col[int64]
}

func newRevocations() *revocations {
	t := &revocations{}
	t.table = *newTable("revocations",
		named(&t.rowID, "row_id"), named(&t.fingerprint, "fingerprint"), named(&t.jti, "jti"),
		named(&t.issuer, "issuer"), named(&t.revokedAt, "revoked_at"), named(&t.reason, "reason"),
		named(&t.source, "source"), named(&t.partition, "partition"), named(&t.offset, "offset"),
	)
	return t
}

func (t *revocations) add(r *tokenwatch.Revocation) {
	fp := ""
	if !r.Fingerprint.IsZero() {
		fp = r.Fingerprint.String()
	}
	t.rowID.add(revocationID(r, fp))
	t.fingerprint.add(fp)
	t.jti.add(r.JTI)
	t.issuer.add(r.Issuer)
	t.revokedAt.add(clampTime(r.Time))
	t.reason.add(r.Reason)
	t.source.add(r.Origin.Source)
	t.partition.add(r.Origin.Partition)
	t.offset.add(r.Origin.Offset)
}

// Delivery is one attempt to deliver an alert to a sink, as the alerts
// package records it.
type Delivery struct {
	AlertID string
	// Sink is the configured sink name; SinkKind is "webhook", "rfc7009" or "ssf".
	Sink     string
	SinkKind string
	// Attempt counts from 1.
	Attempt int
	// StatusCode is the HTTP status, 0 when no response arrived.
	StatusCode int
	// Outcome is "delivered", "retry", "dead_letter" or "rejected".
	Outcome string
	// Error is the error text, which must not contain the token (the alerts
	// package sends fingerprints only).
	Error    string
	Time     time.Time
	Duration time.Duration
}

// deliveries is the deliveries table.
type deliveries struct {
	table
	alertID, sink, sinkKind col[string]
	attempt, statusCode     col[uint16]
	outcome, err            col[string]
	time                    col[time.Time]
	durationMs              col[uint32]
}

func newDeliveries() *deliveries {
	t := &deliveries{}
	t.table = *newTable("deliveries",
		named(&t.alertID, "alert_id"), named(&t.sink, "sink"), named(&t.sinkKind, "sink_kind"),
		named(&t.attempt, "attempt"), named(&t.statusCode, "status_code"), named(&t.outcome, "outcome"),
		named(&t.err, "error"), named(&t.time, "time"), named(&t.durationMs, "duration_ms"),
	)
	return t
}

func (t *deliveries) add(d *Delivery) {
	t.alertID.add(d.AlertID)
	t.sink.add(d.Sink)
	t.sinkKind.add(d.SinkKind)
	t.attempt.add(u16(d.Attempt))
	t.statusCode.add(u16(d.StatusCode))
	t.outcome.add(d.Outcome)
	t.err.add(d.Error)
	t.time.add(clampTime(d.Time))
	ms := d.Duration.Milliseconds()
	if ms < 0 || ms > 1<<32-1 {
		ms = 0
	}
	t.durationMs.add(uint32(ms))
}

// Rows holds the rows built from batches, per table, ready to insert. It is
// reused: Reset keeps the capacity of every column.
type Rows struct {
	events      *tokenEvents
	findings    *findings
	alerts      *alertRows
	revocations *revocations
	deliveries  *deliveries
}

// NewRows returns an empty row set.
func NewRows() *Rows {
	return &Rows{events: newTokenEvents(), findings: newFindings(), alerts: newAlerts(),
		revocations: newRevocations(), deliveries: newDeliveries()}
}

func (r *Rows) tables() [5]*table {
	return [5]*table{&r.events.table, &r.findings.table, &r.alerts.table, &r.revocations.table, &r.deliveries.table}
}

// Len returns the number of rows over all tables.
func (r *Rows) Len() int {
	n := 0
	for _, t := range r.tables() {
		n += t.rows()
	}
	return n
}

// Reset empties r, keeping capacity.
func (r *Rows) Reset() {
	for _, t := range r.tables() {
		t.reset()
	}
}

// AddBatch appends the rows of b: one token_events row per use, one findings
// row per leak sighting, one row per alert and per revocation. It copies
// what it keeps and does not retain b.
func (r *Rows) AddBatch(b *tokenwatch.Batch) error {
	for i := range b.Uses {
		u := &b.Uses[i]
		r.events.add(u)
		if u.Leak {
			r.findings.add(u)
		}
	}
	for i := range b.Alerts {
		if err := r.alerts.add(&b.Alerts[i]); err != nil {
			return err
		}
	}
	for i := range b.Revocations {
		r.revocations.add(&b.Revocations[i])
	}
	return nil
}

// AddDelivery appends one deliveries row.
func (r *Rows) AddDelivery(d *Delivery) { r.deliveries.add(d) }
