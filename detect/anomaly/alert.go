package anomaly

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// alert appends an alert of type typ for the current use; other is the kept
// observation involved (nil when the use alone is the evidence). Token fields
// come from the current use; id, event time and service from the newest use
// involved, so the alert is the same whichever of the two arrived last.
func (r *ruleCtx) alert(dst []tokenwatch.Alert, typ string, other *obs, summary string) []tokenwatch.Alert {
	u := r.u
	cur := tokenwatch.EvidenceOf(u)
	a := tokenwatch.Alert{
		Type:        typ,
		Severity:    r.e.cfg.severity(typ),
		Fingerprint: u.Fingerprint.String(),
		Kind:        u.Kind,
		Redacted:    u.Redacted,
		Service:     u.Service,
		DetectedAt:  r.e.clock().UTC(),
		Summary:     summary,
		Sealed:      u.Sealed,
	}
	if j := u.JWT; j != nil {
		a.JTI, a.Issuer, a.Subject, a.ClientID = j.Jti, j.Iss, j.Sub, j.ClientID
	}
	// The alert is identified by its newest evidence, so the same pair gives the
	// same id whichever of its two uses arrived last.
	src, part, off := u.Origin.Source, u.Origin.Partition, u.Origin.Offset
	if other != nil {
		ev := r.evidenceOf(other)
		if other.dt > r.o.dt {
			a.Evidence = []tokenwatch.Evidence{cur, ev}
			src, part, off = r.sh.in.dispOf(other.disp).source, other.partition(), other.offset()
			a.EventTime = ev.Time
			a.Service = ev.Service
		} else {
			a.Evidence = []tokenwatch.Evidence{ev, cur}
			a.EventTime = cur.Time
		}
	} else {
		a.Evidence = []tokenwatch.Evidence{cur}
		a.EventTime = cur.Time
	}
	a.ID = alertID(typ, &r.key, src, part, off)
	alertCounters[typeIndex(typ)].Inc()
	return append(dst, a)
}

// alertID is the hex of the first 16 bytes of SHA-256 over the alert type, the
// token's state key and the origin (source, partition, offset) of the newest
// use involved: a replay of the same logs gives the same ids.
func alertID(typ string, key *tokenwatch.Fingerprint, source string, partition int32, offset int64) string {
	var buf [256]byte
	b := append(buf[:0], typ...)
	b = append(b, 0)
	b = append(b, key[:]...)
	b = binary.AppendUvarint(b, uint64(len(source)))
	b = append(b, source...)
	b = binary.BigEndian.AppendUint32(b, uint32(partition))
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// lateRevocationAlert appends the post_revocation_use alert of kept
// observation o, judged when revocation rv arrived after it (sinceMs after the
// revocation). Its id is the one the in-order path gives for the
// observation's newest use (the only one that came after the revocation, in
// the common case); the token fields a kept observation does not hold (kind,
// redacted preview, subject, client_id, sealed value) stay empty, and jti and
// issuer come from the revocation.
func (r *ruleCtx) lateRevocationAlert(dst []tokenwatch.Alert, o *obs, rv *tokenwatch.Revocation, sinceMs int64) []tokenwatch.Alert {
	ev := r.evidenceOf(o)
	typ := tokenwatch.AlertPostRevocationUse
	name := "Token " + r.s.fp.String()[:12] + "…"
	if rv.JTI != "" {
		name += " (jti " + rv.JTI + ")"
	}
	s := name + " was accepted (HTTP " + strconv.Itoa(ev.Status) + ")"
	if ev.Service != "" {
		s += " by " + ev.Service
	}
	s += " from " + r.place(o) + " " + humanDuration(sinceMs) + " after it was revoked"
	if rv.Reason != "" {
		s += " (" + rv.Reason + ")"
	}
	a := tokenwatch.Alert{
		Type:        typ,
		Severity:    r.e.cfg.severity(typ),
		Fingerprint: r.s.fp.String(),
		JTI:         rv.JTI,
		Issuer:      rv.Issuer,
		Service:     ev.Service,
		EventTime:   ev.Time,
		DetectedAt:  r.e.clock().UTC(),
		Summary:     s + "; the revocation was read after the use.",
		Evidence:    []tokenwatch.Evidence{ev},
	}
	a.ID = alertID(typ, &r.key, r.sh.in.dispOf(o.disp).source, o.partition(), o.offset())
	alertCounters[typeIndex(typ)].Inc()
	return append(dst, a)
}

// evidenceOf rebuilds the evidence of a kept observation.
func (r *ruleCtx) evidenceOf(o *obs) tokenwatch.Evidence {
	in := &r.sh.in
	d := in.dispOf(o.disp)
	ev := tokenwatch.Evidence{
		Time:      time.UnixMilli(r.s.ms(o.dt)).UTC(),
		ASN:       o.asn,
		ASOrg:     in.orgs[o.asn],
		City:      in.cityOf(o.city),
		UserAgent: d.ua,
		Status:    int(o.status()),
		Service:   d.service,
	}
	if o.country != [2]byte{} {
		ev.Country = string(o.country[:])
	}
	if o.hasIP() {
		ev.IP = o.addr().String()
	}
	if o.hasLoc() {
		ev.Lat, ev.Lon = fromCoord(o.lat), fromCoord(o.lon)
	}
	if p := o.partition(); p >= 0 {
		off := o.offset()
		ev.Topic, ev.Partition, ev.Offset = d.source, &p, &off
	} else {
		ev.File, ev.Line = d.source, o.offset()
	}
	return ev
}

// place describes where a use came from: "Frankfurt, DE (AS3320)".
func (r *ruleCtx) place(o *obs) string {
	if o == r.o {
		g := &r.u.Geo
		return placeString(g.City, g.Country, g.ASN, r.u.IP.String(), r.u.IP.IsValid())
	}
	c := ""
	if o.country != [2]byte{} {
		c = string(o.country[:])
	}
	return placeString(r.sh.in.cityOf(o.city), c, o.asn, o.addr().String(), o.hasIP())
}

func placeString(city, country string, asn uint32, ip string, hasIP bool) string {
	var b strings.Builder
	switch {
	case city != "" && country != "":
		b.WriteString(city + ", " + country)
	case country != "":
		b.WriteString(country)
	case city != "":
		b.WriteString(city)
	case hasIP:
		b.WriteString(ip)
	default:
		return "an unknown address"
	}
	if asn != 0 {
		b.WriteString(" (AS" + strconv.FormatUint(uint64(asn), 10) + ")")
	} else if (city != "" || country != "") && hasIP {
		b.WriteString(" (" + ip + ")")
	}
	return b.String()
}

// tokenName is "Token eyJhbG…Qssw (sub alice, client web)".
func tokenName(u *tokenwatch.TokenUse, noun string) string {
	name := u.Redacted
	if name == "" {
		name = u.Fingerprint.String()[:12] + "…"
	}
	s := noun + " " + name
	if w := who(u); w != "" {
		s += " (" + w + ")"
	}
	return s
}

func who(u *tokenwatch.TokenUse) string {
	var parts []string
	if j := u.JWT; j != nil {
		if j.Sub != "" {
			parts = append(parts, "sub "+j.Sub)
		}
		if j.ClientID != "" {
			parts = append(parts, "client "+j.ClientID)
		}
	}
	if len(parts) == 0 && u.User != "" {
		parts = append(parts, "user "+u.User)
	}
	return strings.Join(parts, ", ")
}

// humanDuration renders ms as "40 seconds", "11 minutes", "8 hours 5 minutes".
func humanDuration(ms int64) string {
	if ms < 0 {
		ms = -ms
	}
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.FormatInt(n, 10) + " " + unit + "s"
	}
	switch {
	case ms < 1000:
		return "under a second"
	case ms < 60_000:
		return plural(ms/1000, "second")
	case ms < 3_600_000:
		return plural((ms+30_000)/60_000, "minute")
	case ms < 48*3_600_000:
		m := (ms + 30_000) / 60_000
		h, m := m/60, m%60
		if m == 0 {
			return plural(h, "hour")
		}
		return plural(h, "hour") + " " + plural(m, "minute")
	}
	return plural((ms+12*3_600_000)/(24*3_600_000), "day")
}

// commaInt renders n with thousands separators: 16500 -> "16,500".
func commaInt(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := ""
	if n < 0 {
		neg, s = "-", s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return neg + b.String()
}

func statusText(u *tokenwatch.TokenUse) string { return "HTTP " + strconv.Itoa(u.Status) }

func byService(u *tokenwatch.TokenUse) string {
	if u.Service != "" {
		return " by " + u.Service
	}
	return ""
}

func usePlace(u *tokenwatch.TokenUse) string {
	return placeString(u.Geo.City, u.Geo.Country, u.Geo.ASN, u.IP.String(), u.IP.IsValid())
}

func summaryTravel(u *tokenwatch.TokenUse, from, to string, dtMs int64, km, kmh float64) string {
	later := humanDuration(dtMs) + " later"
	if dtMs < 1000 {
		later = "at the same time"
	}
	return tokenName(u, "Token") + " was used from " + from + " and " + later + " from " + to + ": " +
		commaInt(int64(km+0.5)) + " km apart, " + commaInt(int64(kmh+0.5)) + " km/h."
}

func summaryConcurrent(u *tokenwatch.TokenUse, from, to string, dtMs int64, why string) string {
	within := "within " + humanDuration(dtMs)
	if dtMs < 1000 {
		within = "at the same time"
	}
	return tokenName(u, "Token") + " was used from " + from + " and from " + to + " " + within +
		": " + why + " on two networks cannot be one client."
}

func summaryLeakedReplay(u *tokenwatch.TokenUse, leakService string, leakMs, sinceMs int64, place string) string {
	where := "a log"
	if leakService != "" {
		where = "the " + leakService + " log"
	}
	return tokenName(u, "Token") + ", leaked in " + where + " at " + time.UnixMilli(leakMs).UTC().Format("2006-01-02 15:04:05 UTC") +
		", was used " + humanDuration(sinceMs) + " later from " + place + ", a network that had not used it before the leak."
}

func summaryRevoked(u *tokenwatch.TokenUse, sinceMs int64, reason string) string {
	s := tokenName(u, "Token") + " was accepted (" + statusText(u) + ")" + byService(u) + " from " + usePlace(u) + " " +
		humanDuration(sinceMs) + " after it was revoked"
	if reason != "" {
		s += " (" + reason + ")"
	}
	return s + "."
}

func summaryExpired(u *tokenwatch.TokenUse, sinceMs int64) string {
	return tokenName(u, "Token") + " was accepted (" + statusText(u) + ")" + byService(u) + " from " + usePlace(u) + " " +
		humanDuration(sinceMs) + " after it expired at " + u.JWT.ExpTime().Format("2006-01-02 15:04:05 UTC") + "."
}

func summaryAlgNone(u *tokenwatch.TokenUse) string {
	return tokenName(u, "Unsigned JWT") + " with alg \"none\" was accepted (" + statusText(u) + ")" + byService(u) +
		" from " + usePlace(u) + "."
}

func summaryLeak(u *tokenwatch.TokenUse) string {
	kind := u.Kind
	if kind == "" {
		kind = "credential"
	}
	where := "an application log"
	if u.Service != "" {
		where = "the " + u.Service + " log"
	}
	loc := ""
	if o := u.Origin; o.Source != "" {
		if o.IsKafka() {
			loc = " (" + o.Source + " partition " + strconv.Itoa(int(o.Partition)) + " offset " + strconv.FormatInt(o.Offset, 10) + ")"
		} else {
			loc = " (" + o.Source + " line " + strconv.FormatInt(o.Offset, 10) + ")"
		}
	}
	return tokenName(u, "Token") + ", a " + kind + ", was written to " + where + loc + "."
}
