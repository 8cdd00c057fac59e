package parse

import (
	"net/netip"
)

// maxNesting bounds how often a message is unwrapped (syslog -> CRI -> JSON ->
// embedded message): each level is parsed once, so work stays linear.
const maxNesting = 3

// detect parses raw with the first parser whose format it matches, in this order
// (docs/formats.md):
//
//  1. '{'                                  JSON (dialect chosen by its keys)
//  2. "<PRI>" or "Mmm dd hh:mm:ss host"    syslog RFC 5424 / 3164 prefix, then the message
//  3. "[ISO-time] \"METHOD "              Envoy default text format
//  4. "#Fields:"                           IIS / W3C header (remembered per source)
//  5. "yyyy-mm-dd hh:mm:ss <ip> METHOD"    IIS W3C extended (default or remembered field order)
//  6. "<RFC3339> stdout|stderr F|P "       CRI container log prefix, then the message
//  7. "... [dd/Mon/yyyy:hh:mm:ss ...] \"" nginx/Apache combined or common
//  8. "key=value key=value"                logfmt
//  9. anything else                        plain text (leading time stamp, then logfmt,
//     JSON or free text)
func (st *pstate) detect(raw []byte, depth int) formatID {
	s := trimSpace(raw)
	s = trimBOM(s)
	if len(s) == 0 {
		return fmtPlain
	}
	if depth > maxNesting {
		st.plain(s)
		return fmtPlain
	}
	switch c := s[0]; {
	case c == '{':
		return st.json(s, depth)
	case c == '<':
		if h, msg, ok := st.syslogPRI(s); ok {
			f := st.detect(msg, depth+1)
			st.applySyslog(h)
			return f
		}
	case c == '[':
		if st.envoyText(s) {
			return fmtEnvoy
		}
	case c == '#':
		if hasPrefixFold(s, "#Fields:") {
			st.p.iis.observe(st.source, s)
		}
		st.plain(s)
		return fmtPlain
	case isDigit(c):
		if st.iisLine(s) {
			return fmtIIS
		}
		if t, msg, ok := st.cri(s); ok {
			f := st.detect(msg, depth+1)
			st.setTime(t)
			return f
		}
		if h, msg, ok := st.syslog3164(s, false); ok {
			f := st.detect(msg, depth+1)
			st.applySyslog(h)
			return f
		}
	case isAlpha(c):
		if h, msg, ok := st.syslog3164(s, false); ok {
			f := st.detect(msg, depth+1)
			st.applySyslog(h)
			return f
		}
	}
	if f, ok := st.clf(s); ok {
		return f
	}
	if looksLogfmt(s) {
		st.logfmt(s, depth)
		return fmtLogfmt
	}
	return st.plainDetect(s, depth)
}

func trimBOM(s []byte) []byte {
	if len(s) >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF {
		return s[3:]
	}
	return s
}

// json parses a JSON record. A malformed one keeps what was read before the error,
// is flagged, and is searched as plain text for the rest.
func (st *pstate) json(s []byte, depth int) formatID {
	var c collected
	if reason := walkJSON(s, st.p.keys, &c); reason != "" {
		st.flag(reason)
		format := st.applyCollected(&c, depth, true)
		st.plain(s)
		return format
	}
	return st.applyCollected(&c, depth, true)
}

// applyCollected turns the values a key-based parser collected into fields and
// returns the JSON dialect.
func (st *pstate) applyCollected(c *collected, depth int, dialects bool) formatID {
	m := c.markers
	format := fmtJSON
	switch {
	case !dialects:
	case m&mkOktaPublished != 0 && m&mkOktaEvent != 0:
		format = fmtOkta
	case m&mkAuth0Log != 0 || (m&mkAuth0Date != 0 && m&mkAuth0Type != 0 && c.vals[fAuth0Type].prio != 0 && c.vals[fTime].prio != 0 && c.vals[fIP].prio != 0):
		format = fmtAuth0
	case m&mkEnvoy != 0:
		format = fmtEnvoyJSON
	case m&mkECS != 0 && m&mkTimestampAt != 0:
		format = fmtECS
	case m&mkCaddy != 0:
		format = fmtCaddy
	case m&mkNginx != 0:
		format = fmtNginxJSON
	}
	st.setTimeBytes(c.get(fTime))

	if b := c.get(fClient); b != nil {
		if a, ok := parseIP(b); ok {
			st.setIP(a) // resolved by the logging system (Okta, Caddy) already
		}
	}
	if !st.f.IP.IsValid() {
		var peer netip.Addr
		if b := c.get(fIP); b != nil {
			peer, _ = parseIP(b)
		}
		st.setIP(st.p.resolveClient(peer, c.get(fXFF), c.get(fForwarded)))
	}
	st.setUA(c.get(fUA))
	st.setUser(c.get(fUser))
	st.setMethod(c.get(fMethod))
	if b := c.get(fPath); b != nil {
		st.setPath(b)
	}
	if b := c.get(fRequest); b != nil {
		st.setRequestLine(b)
	}
	st.setStatus(parseStatus(c.get(fStatus)))
	st.setStatus(parseStatus(c.get(fRespStatus)))
	switch format {
	case fmtOkta:
		st.setStatus(oktaStatus(c.get(fOutcome)))
		st.setService([]byte("okta"))
	case fmtAuth0:
		st.setStatus(auth0Status(c.get(fAuth0Type)))
		st.setService([]byte("auth0"))
	}
	st.setService(c.get(fService))
	st.setHost(c.get(fHost))
	if c.dpopSeen || c.headersLogged {
		st.f.HeadersLogged = true
	}
	if c.vals[fDPoP].prio != 0 {
		st.f.DPoPProof = true
	}
	// A wrapper (Docker json-file, Filebeat, Fluent Bit) carrying the access log
	// line as a message: parse the message for the request fields it lacks.
	if msg := c.get(fMessage); len(msg) > 0 && (!st.f.IP.IsValid() || st.f.Path == "" || st.f.Method == "") {
		inner := pstate{p: st.p, ref: st.ref, source: st.source, f: st.f}
		inner.detect(msg, depth+1)
	}
	return format
}

// applyKeyed applies the values of a logfmt record.
func (st *pstate) applyKeyed(c *collected, depth int) { st.applyCollected(c, depth, false) }

// oktaStatus maps an Okta System Log outcome.result to an HTTP-like status.
func oktaStatus(b []byte) int {
	switch {
	case eqFold(b, "SUCCESS"), eqFold(b, "ALLOW"):
		return 200
	case eqFold(b, "FAILURE"), eqFold(b, "CHALLENGE"):
		return 401
	case eqFold(b, "DENY"):
		return 403
	}
	return 0
}

// auth0Status maps an Auth0 log event type code to an HTTP-like status: codes
// starting with "s" are successes (200), with "f" failures (401), rate limits and
// blocks 429; warnings and informational codes have none.
func auth0Status(b []byte) int {
	switch {
	case len(b) == 0:
		return 0
	case hasPrefixFold(b, "limit_"), hasPrefixFold(b, "api_limit"):
		return 429
	case hasPrefixFold(b, "sys_"):
		return 0
	case b[0] == 's':
		return 200
	case b[0] == 'f':
		if eqFold(b, "fapi") {
			return 403
		}
		return 401
	}
	return 0
}

// plainDetect handles records that start with something else: a leading time
// stamp is taken, and the rest is parsed as logfmt, JSON or free text.
func (st *pstate) plainDetect(s []byte, depth int) formatID {
	t, rest, ok := st.leadingTime(s)
	if ok {
		st.setTime(t)
		rest = trimSpace(rest)
		// "2026-11-25T08:14:06Z INFO {...}" and "... level=info ip=..." forms.
		if r := skipLevelWord(rest); len(r) > 0 {
			if r[0] == '{' {
				return st.json(r, depth+1)
			}
			if looksLogfmt(r) {
				st.logfmt(r, depth)
				return fmtLogfmt
			}
		}
	}
	st.plain(s)
	return fmtPlain
}

// skipLevelWord skips a log level word ("INFO", "[warn]", "level:") in front of a
// structured payload.
func skipLevelWord(s []byte) []byte {
	if len(s) > 0 && (s[0] == '{' || !isAlpha(s[0]) && s[0] != '[') {
		return s
	}
	i := 0
	for i < len(s) && s[i] != ' ' {
		i++
	}
	if i > 10 {
		return s
	}
	w := s[:i]
	for len(w) > 0 && (w[0] == '[') {
		w = w[1:]
	}
	for len(w) > 0 && (w[len(w)-1] == ']' || w[len(w)-1] == ':') {
		w = w[:len(w)-1]
	}
	switch {
	case eqFold(w, "trace"), eqFold(w, "debug"), eqFold(w, "info"), eqFold(w, "warn"),
		eqFold(w, "warning"), eqFold(w, "error"), eqFold(w, "fatal"), eqFold(w, "notice"),
		eqFold(w, "crit"), eqFold(w, "dbg"), eqFold(w, "inf"), eqFold(w, "wrn"), eqFold(w, "err"):
		return trimSpace(s[i:])
	}
	return s
}
