package parse

import (
	"log/slog"
	"time"

	"github.com/tokenwatch/tokenwatch"
)

// revocationKeys are the keys of a revocation event:
//
//	{"jti": "...", "iss": "...", "token": "..." | "fingerprint": "<32 hex>",
//	 "time": RFC 3339 or epoch, "reason": "..."}
var revocationKeys = func() map[string]keyInfo {
	m := map[string]keyInfo{}
	add := func(f field, keys ...string) {
		for i, k := range keys {
			m[k] = keyInfo{field: f, prio: uint8(i + 2)}
		}
	}
	add(fJTI, "jti")
	add(fIssuer, "iss", "issuer")
	add(fToken, "token", "access_token", "refresh_token")
	add(fFingerprint, "fingerprint")
	add(fTime, "time", "revoked_at", "timestamp", "@timestamp", "ts")
	add(fReason, "reason")
	return m
}()

// revocation parses r as a revocation event and appends it to b.Revocations.
// Events that name neither a jti nor a token/fingerprint are counted as malformed
// and dropped. A token is fingerprinted and forgotten; it is never kept.
func (p *Parser) revocation(r *tokenwatch.Record, ingest time.Time, b *tokenwatch.Batch) {
	var c collected
	raw := trimBOM(trimSpace(r.Raw))
	if reason := walkJSON(raw, revocationKeys, &c); reason != "" {
		r.Flags |= tokenwatch.FlagMalformed
		malformedCounter(reasonRevocation).Inc()
		return
	}
	rev := tokenwatch.Revocation{Origin: r.Origin}
	if v := c.get(fJTI); v != nil {
		rev.JTI = toString(v, maxShortField)
	}
	if v := c.get(fIssuer); v != nil {
		rev.Issuer = toString(v, maxShortField)
	}
	if v := c.get(fReason); v != nil {
		rev.Reason = toString(v, maxShortField)
	}
	if v := c.get(fFingerprint); v != nil {
		fp, err := tokenwatch.ParseFingerprint(string(trimSpace(v)))
		if err != nil {
			r.Flags |= tokenwatch.FlagMalformed
			malformedCounter(reasonRevocation).Inc()
			return
		}
		rev.Fingerprint = fp
	} else if c.vals[fToken].prio != 0 {
		if p.fp == nil {
			p.warnNoFP.Do(func() {
				slog.Warn("revocation event carries a token but no fingerprinter is configured; such events are dropped",
					"source", r.Origin.Source)
			})
			malformedCounter(reasonNoFP).Inc()
			return
		}
		escaped := c.vals[fToken].esc
		tok := c.get(fToken)
		rev.Fingerprint = p.fp.Fingerprint(trimSpace(tok))
		if escaped {
			clear(tok) // our own unescaped copy
		}
	}
	if rev.JTI == "" && rev.Fingerprint.IsZero() {
		r.Flags |= tokenwatch.FlagMalformed
		malformedCounter(reasonRevocation).Inc()
		return
	}
	rev.Time = ingest
	if v := c.get(fTime); v != nil {
		if t, ok := p.parseTime(v, ingest); ok {
			rev.Time = t
		}
	}
	r.Parsed = true
	b.Revocations = append(b.Revocations, rev)
}
