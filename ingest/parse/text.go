package parse

import (
	"bytes"
	"net/netip"
	"time"
)

// maxScan bounds how far into a record the free-text searches (IP address,
// request line) look: fields sit near the start, and a 10 MB record must not cost
// more than a bounded scan.
const maxScan = 64 << 10

// ---- tokens ---------------------------------------------------------------

// token is one space-separated word or one double-quoted string of a text record.
type token struct {
	b      []byte // content, quotes removed, escapes kept
	quoted bool
	esc    bool
}

// nextToken returns the token starting at or after s[i] and the index after it.
func nextToken(s []byte, i int) (token, int, bool) {
	for i < len(s) && s[i] == ' ' {
		i++
	}
	if i >= len(s) {
		return token{}, i, false
	}
	if s[i] == '"' {
		j := i + 1
		esc := false
		for j < len(s) && s[j] != '"' {
			if s[j] == '\\' {
				esc = true
				j++
			}
			j++
		}
		if j >= len(s) {
			return token{b: s[i+1:], quoted: true, esc: esc}, len(s), true
		}
		return token{b: s[i+1 : j], quoted: true, esc: esc}, j + 1, true
	}
	j := i
	for j < len(s) && s[j] != ' ' {
		j++
	}
	return token{b: s[i:j]}, j, true
}

// text returns the token's content with backslash escapes decoded.
func (t token) text() []byte {
	if !t.esc {
		return t.b
	}
	return appendUnescaped(nil, t.b)
}

// ---- plain text -----------------------------------------------------------

// plain extracts what free text offers: a leading time stamp, the first IP
// address, and a request line ("GET /path HTTP/1.1" [status]) if there is one.
func (st *pstate) plain(s []byte) {
	if t, _, ok := st.leadingTime(s); ok {
		st.setTime(t)
	}
	if len(s) > maxScan {
		s = s[:maxScan]
	}
	if !st.f.IP.IsValid() {
		if a, ok := firstIP(s); ok {
			st.setIP(a)
		}
	}
	if st.f.Method == "" {
		st.findRequestLine(s)
	}
}

// leadingTime finds a time stamp at the start of s: "[...]", or the first one to
// six space-separated words that ParseTime accepts (longest first).
func (st *pstate) leadingTime(s []byte) (time.Time, []byte, bool) {
	if len(s) == 0 {
		return time.Time{}, s, false
	}
	if s[0] == '[' {
		end := bytes.IndexByte(s[:min(len(s), maxTimeLen+2)], ']')
		if end > 0 {
			if t, ok := st.p.parseTime(s[1:end], st.ref); ok {
				return t, s[end+1:], true
			}
		}
		return time.Time{}, s, false
	}
	if t, n, ok := parseKlogTime(s, st.p.loc, st.ref); ok {
		return t, s[n:], true
	}
	maxWords := 3
	switch {
	case isDigit(s[0]):
	case isAlpha(s[0]) && len(s) >= 4 && (s[3] == ' ' || s[3] == ',') && isAlphaWord(s[:3]):
		maxWords = 6 // "Mon, 02 Jan 2006 15:04:05 GMT", "Wed Oct 11 14:32:52 2000"
	default:
		return time.Time{}, s, false
	}
	var ends [6]int
	n := 0
	for i := 0; i < len(s) && i <= maxTimeLen && n < maxWords; {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		j := i
		for j < len(s) && j <= maxTimeLen && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		if j == i || j > maxTimeLen {
			break
		}
		ends[n] = j
		n++
		i = j
	}
	for k := n - 1; k >= 0; k-- {
		if ends[k] > maxTimeLen {
			continue
		}
		if t, ok := st.p.parseTime(s[:ends[k]], st.ref); ok {
			return t, s[ends[k]:], true
		}
	}
	return time.Time{}, s, false
}

// firstIP returns the first IPv4 or IPv6 address in free text.
func firstIP(s []byte) (netip.Addr, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isHex(c) && c != ':' {
			continue
		}
		if i > 0 {
			if p := s[i-1]; isAlpha(p) || isDigit(p) || p == '.' || p == ':' || p == '-' || p == '_' {
				continue
			}
		}
		j := i
		dots, colons := 0, 0
		for j < len(s) && j-i < 64 && (isHex(s[j]) || s[j] == '.' || s[j] == ':') {
			if s[j] == '.' {
				dots++
			} else if s[j] == ':' {
				colons++
			}
			j++
		}
		run := s[i:j]
		if j < len(s) && (isAlpha(s[j]) || s[j] == '-' || s[j] == '_') {
			i = j
			continue // part of a word or a longer token
		}
		for len(run) > 0 && (run[len(run)-1] == '.' || run[len(run)-1] == ':') {
			run = run[:len(run)-1] // sentence punctuation
		}
		if (dots == 3 && colons <= 1) || colons >= 2 {
			if a, ok := parseIP(run); ok && !a.IsUnspecified() {
				return a, true
			}
		}
		i = j
	}
	return netip.Addr{}, false
}

// findRequestLine finds "METHOD /target[ HTTP/x]" in free text, and a status
// right after a quoted request line.
func (st *pstate) findRequestLine(s []byte) {
	for i := 0; i+5 < len(s); i++ {
		c := s[i]
		if c < 'A' || c > 'Z' || (i > 0 && (isAlpha(s[i-1]) || isDigit(s[i-1]))) {
			continue
		}
		j := i
		for j < len(s) && j-i <= 8 && s[j] >= 'A' && s[j] <= 'Z' {
			j++
		}
		if j+1 >= len(s) || s[j] != ' ' || !knownMethod(s[i:j]) || (s[j+1] != '/' && !hasPrefixFold(s[j+1:], "http")) {
			i = j
			continue
		}
		k := j + 1
		for k < len(s) && s[k] != ' ' && s[k] != '"' {
			k++
		}
		st.setMethod(s[i:j])
		st.setPath(s[j+1 : k])
		// "GET /x HTTP/1.1" 200
		rest := s[k:]
		if len(rest) > 6 && rest[0] == ' ' && hasPrefixFold(rest[1:], "HTTP/") {
			m := 1
			for m < len(rest) && rest[m] != ' ' && rest[m] != '"' {
				m++
			}
			rest = rest[m:]
		}
		if i > 0 && s[i-1] == '"' && len(rest) > 0 && rest[0] == '"' {
			if t, _, ok := nextToken(rest, 1); ok {
				st.setStatus(parseStatus(t.b))
			}
		}
		return
	}
}

// ---- syslog ---------------------------------------------------------------

// syslogHeader is what a syslog envelope says about its message.
type syslogHeader struct {
	time    time.Time
	host    []byte
	app     []byte
	hasTime bool
}

func (st *pstate) applySyslog(h syslogHeader) {
	st.syslog = true
	if h.hasTime {
		st.setTime(h.time)
	}
	st.setService(h.app)
	if st.f.Host == "" && len(h.host) > 0 && !isDash(h.host) {
		st.setHost(h.host)
	}
}

// syslogPRI parses an RFC 5424 / 3164 envelope starting with "<PRI>".
func (st *pstate) syslogPRI(s []byte) (syslogHeader, []byte, bool) {
	i := 1
	for i < len(s) && i <= 4 && isDigit(s[i]) {
		i++
	}
	if i == 1 || i >= len(s) || s[i] != '>' {
		return syslogHeader{}, nil, false
	}
	pri, _ := atoiN(s[1:i])
	if pri > 191 {
		return syslogHeader{}, nil, false
	}
	rest := s[i+1:]
	if len(rest) >= 2 && isDigit(rest[0]) && (rest[1] == ' ' || (len(rest) >= 3 && isDigit(rest[1]) && rest[2] == ' ')) {
		if h, msg, ok := st.syslog5424(rest); ok {
			return h, msg, true
		}
		st.flag(reasonSyslog)
		return syslogHeader{}, rest, true
	}
	if h, msg, ok := st.syslog3164(rest, true); ok {
		return h, msg, true
	}
	return syslogHeader{}, rest, true
}

// syslog5424 parses "VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]".
func (st *pstate) syslog5424(s []byte) (syslogHeader, []byte, bool) {
	var h syslogHeader
	var words [6][]byte
	i := 0
	for k := 0; k < 6; k++ {
		j := i
		for j < len(s) && s[j] != ' ' {
			j++
		}
		if j == i || (j >= len(s) && k < 5) {
			return h, nil, false
		}
		words[k] = s[i:j]
		i = j + 1
	}
	if !isDash(words[1]) {
		t, ok := parseTimeRef(words[1], st.p.loc, st.ref)
		if !ok {
			return h, nil, false
		}
		h.time, h.hasTime = t, true
	}
	h.host, h.app = words[2], words[3]
	if isDash(h.app) {
		h.app = nil
	}
	if i >= len(s) {
		return h, nil, true
	}
	// STRUCTURED-DATA: "-" or one or more [id key="value" ...] elements.
	if s[i] == '-' {
		i++
	} else if s[i] == '[' {
		for i < len(s) && s[i] == '[' {
			inQuote := false
			i++
			for i < len(s) {
				c := s[i]
				if c == '\\' {
					i += 2
					continue
				}
				if c == '"' {
					inQuote = !inQuote
				} else if c == ']' && !inQuote {
					break
				}
				i++
			}
			if i >= len(s) {
				return h, nil, false
			}
			i++
		}
	} else {
		return h, nil, false
	}
	if i < len(s) && s[i] == ' ' {
		i++
	}
	return h, trimBOM(s[min(i, len(s)):]), true
}

// syslog3164 parses "TIMESTAMP HOST TAG[pid]: MSG", where TIMESTAMP is
// "Mmm dd hh:mm:ss" or RFC 3339. Without a PRI the tag is required (and, after an
// RFC 3339 time, must carry a [pid]) so that ordinary text is not mistaken for it.
func (st *pstate) syslog3164(s []byte, hasPRI bool) (syslogHeader, []byte, bool) {
	var h syslogHeader
	i := 0
	iso := false
	if len(s) > 0 && isAlpha(s[0]) {
		// "Mmm dd hh:mm:ss" (dd may be space padded), optionally ".frac" or " yyyy".
		if len(s) < 15 || monthOf(s[:3]) == 0 || s[3] != ' ' {
			return h, nil, false
		}
		end := 4
		if s[end] == ' ' {
			end++
		}
		for end < len(s) && isDigit(s[end]) {
			end++
		}
		end++ // the space after the day
		if end+5 <= len(s) && isDigit(s[end]) && isDigit(s[end+1]) && isDigit(s[end+2]) && isDigit(s[end+3]) && s[end+4] == ' ' {
			end += 5 // "Oct 11 2026 22:14:15"
		}
		end += 8 // hh:mm:ss
		if end > len(s) {
			return h, nil, false
		}
		for end < len(s) && s[end] != ' ' {
			end++ // ".frac"
		}
		t, ok := parseSyslogTime(s[:end], st.p.loc, st.ref)
		if !ok {
			return h, nil, false
		}
		h.time, h.hasTime = t, true
		i = end
	} else {
		end := bytes.IndexByte(s[:min(len(s), maxTimeLen)], ' ')
		if end < 0 {
			return h, nil, false
		}
		t, ok := parseISO(s[:end], st.p.loc)
		if !ok {
			return h, nil, false
		}
		h.time, h.hasTime = t, true
		i = end
		iso = true
	}
	host, n, ok := nextToken(s, i)
	if !ok || host.quoted || host.b[len(host.b)-1] == ':' {
		if hasPRI {
			return h, trimSpace(s[i:]), true
		}
		return h, nil, false
	}
	h.host = host.b
	i = n
	tag, n, ok := nextToken(s, i)
	tb := tag.b
	if ok && !tag.quoted && len(tb) > 1 && tb[len(tb)-1] == ':' && len(tb) <= 64 {
		tb = tb[:len(tb)-1]
		pid := false
		if k := bytes.IndexByte(tb, '['); k > 0 && tb[len(tb)-1] == ']' {
			tb, pid = tb[:k], true
		}
		if validTag(tb) && (hasPRI || !iso || pid) {
			h.app = tb
			return h, trimSpace(s[n:]), true
		}
	}
	if hasPRI {
		return h, trimSpace(s[i:]), true
	}
	return h, nil, false
}

func validTag(b []byte) bool {
	if len(b) == 0 || len(b) > 48 {
		return false
	}
	for _, c := range b {
		if !isAlpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '.' && c != '/' {
			return false
		}
	}
	return true
}

// ---- CRI (containerd / CRI-O) ---------------------------------------------

// cri strips "2026-11-25T08:14:06.123456789Z stdout F " and returns the message
// with its time.
func (st *pstate) cri(s []byte) (time.Time, []byte, bool) {
	end := bytes.IndexByte(s[:min(len(s), maxTimeLen)], ' ')
	if end < 20 || len(s) < end+10 {
		return time.Time{}, nil, false
	}
	rest := s[end+1:]
	if !bytes.HasPrefix(rest, []byte("stdout ")) && !bytes.HasPrefix(rest, []byte("stderr ")) {
		return time.Time{}, nil, false
	}
	rest = rest[7:]
	if len(rest) < 2 || (rest[0] != 'F' && rest[0] != 'P') || rest[1] != ' ' {
		return time.Time{}, nil, false
	}
	t, ok := parseISO(s[:end], st.p.loc)
	if !ok {
		return time.Time{}, nil, false
	}
	return t, rest[2:], true
}

// ---- nginx / Apache combined and common -----------------------------------

// clf parses `[vhost] host ident user [time] "request" status bytes ["referer"
// "user agent" [extra ...]]`. An extra quoted field holding a list of addresses is
// taken as X-Forwarded-For (nginx's default "main" format ends with it).
func (st *pstate) clf(s []byte) (formatID, bool) {
	lb := bytes.IndexByte(s[:min(len(s), 1024)], '[')
	if lb < 5 || s[lb-1] != ' ' {
		return 0, false
	}
	rb := bytes.IndexByte(s[lb:min(len(s), lb+64)], ']')
	if rb < 0 {
		return 0, false
	}
	rb += lb
	if rb+2 >= len(s) || s[rb+1] != ' ' || s[rb+2] != '"' {
		return 0, false
	}
	t, ok := parseCLFTime(s[lb+1:rb], st.p.loc)
	if !ok {
		return 0, false
	}
	// Prefix words: [vhost] host ident user.
	var words [8][]byte
	n := 0
	for i := 0; i < lb && n < len(words); {
		tk, j, ok := nextToken(s[:lb], i)
		if !ok {
			break
		}
		words[n] = tk.b
		n++
		i = j
	}
	if n < 3 {
		return 0, false
	}
	host, user := words[n-3], words[n-1]
	var vhost []byte
	if n >= 4 {
		vhost = words[n-4]
	}
	st.setTime(t)

	req, i, _ := nextToken(s, rb+1)
	status, i, _ := nextToken(s, i)
	_, i, _ = nextToken(s, i) // bytes
	format := fmtCommon
	var ua token
	var xff []byte
	if ref, j, ok := nextToken(s, i); ok && ref.quoted {
		if u, k, ok := nextToken(s, j); ok && u.quoted {
			format, ua, i = fmtCombined, u, k
			// Extras: the first quoted list of addresses is X-Forwarded-For.
			for extra := 0; extra < 16; extra++ {
				tk, k, ok := nextToken(s, i)
				if !ok {
					break
				}
				i = k
				if tk.quoted && xff == nil && isAddrList(tk.b) {
					xff = tk.b
				}
			}
		}
	}
	peer, _ := parseIP(host)
	st.setIP(st.p.resolveClient(peer, xff, nil))
	st.setUser(trimQuotes(user))
	st.setRequestLine(req.text())
	st.setStatus(parseStatus(status.b))
	if format == fmtCombined {
		st.setUA(ua.text())
	}
	if vhost != nil {
		st.setHost(vhost)
	}
	return format, true
}

func trimQuotes(b []byte) []byte {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		return b[1 : len(b)-1]
	}
	return b
}

// isAddrList reports whether b is a comma-separated list of IP addresses.
func isAddrList(b []byte) bool {
	if len(b) == 0 || isDash(b) {
		return false
	}
	for len(b) > 0 {
		i := bytes.IndexByte(b, ',')
		e := b
		if i >= 0 {
			e, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if _, ok := parseIP(e); !ok {
			return false
		}
	}
	return true
}

// ---- Envoy default text format --------------------------------------------

// envoyText parses Envoy's default access log format, both the classic one
//
//	[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
//	%RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%
//	"%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"
//
// and the current one, which adds "%UPSTREAM_TRANSPORT_FAILURE_REASON%" before
// X-Forwarded-For and ends with %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS%
// %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%.
func (st *pstate) envoyText(s []byte) bool {
	if len(s) == 0 || s[0] != '[' {
		return false
	}
	rb := bytes.IndexByte(s[:min(len(s), maxTimeLen+2)], ']')
	if rb < 2 || rb+2 >= len(s) || s[rb+1] != ' ' || s[rb+2] != '"' {
		return false
	}
	t, ok := parseISO(s[1:rb], st.p.loc)
	if !ok {
		return false
	}
	req, i, ok := nextToken(s, rb+1)
	if !ok || !req.quoted {
		return false
	}
	var quoted [8]token
	var bare [8][]byte
	nq, nb := 0, 0
	var status []byte
	for k := 0; k < 40; k++ {
		tk, j, ok := nextToken(s, i)
		if !ok {
			break
		}
		i = j
		switch {
		case status == nil && !tk.quoted:
			status = tk.b
		case tk.quoted:
			if nq < len(quoted) {
				quoted[nq] = tk
				nq++
			}
			nb = 0 // bare words after the last quoted field
		case nb < len(bare):
			bare[nb] = tk.b
			nb++
		}
	}
	st.setTime(t)
	st.setRequestLine(req.text())
	st.setStatus(parseStatus(status))
	q := quoted[:nq]
	var peer netip.Addr
	if len(q) >= 6 {
		q = q[1:] // UPSTREAM_TRANSPORT_FAILURE_REASON
		if nb >= 1 {
			st.setService(bare[0])
		}
		if nb >= 4 {
			peer, _ = parseIP(bare[3])
		}
	}
	var xff []byte
	if len(q) >= 1 {
		xff = q[0].b
	}
	st.setIP(st.p.resolveClient(peer, xff, nil))
	if len(q) >= 2 {
		st.setUA(q[1].text())
	}
	if len(q) >= 4 {
		st.setHost(q[3].b)
	}
	return true
}

// ---- logfmt ---------------------------------------------------------------

// looksLogfmt reports whether s starts with key=value pairs (at least two among
// its first eight words, the first word being one).
func looksLogfmt(s []byte) bool {
	pairs := 0
	i := 0
	for w := 0; w < 8; w++ {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) {
			break
		}
		k := i
		for k < len(s) && isKeyChar(s[k]) {
			k++
		}
		isPair := k > i && k < len(s) && s[k] == '=' && (isAlpha(s[i]) || s[i] == '_' || s[i] == '@')
		if w == 0 && !isPair {
			return false
		}
		if isPair {
			pairs++
			i = k + 1
		}
		// Skip the value (or the bare word).
		if i < len(s) && s[i] == '"' {
			i++
			for i < len(s) && s[i] != '"' {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			i++
		} else {
			for i < len(s) && s[i] != ' ' {
				i++
			}
		}
	}
	return pairs >= 2
}

func isKeyChar(c byte) bool {
	return isAlpha(c) || isDigit(c) || c == '_' || c == '.' || c == '-' || c == '@' || c == '/' || c == '(' || c == ')'
}

// logfmt parses key=value pairs, values bare or double-quoted with backslash
// escapes, and maps keys through the same table as JSON paths.
func (st *pstate) logfmt(s []byte, depth int) {
	var c collected
	var kb [maxKeyPath]byte
	i := 0
	for i < len(s) {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		k := i
		for k < len(s) && s[k] != '=' && s[k] != ' ' {
			k++
		}
		key := s[i:k]
		if k >= len(s) || s[k] != '=' {
			i = k // bare word
			continue
		}
		i = k + 1
		var v value
		if i < len(s) && s[i] == '"' {
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					v.esc = true
					j++
				}
				j++
			}
			v.b = s[i+1 : min(j, len(s))]
			i = j + 1
		} else {
			j := i
			for j < len(s) && s[j] != ' ' {
				j++
			}
			v.b = s[i:j]
			i = j
		}
		v.str = true
		if len(key) == 0 || len(key) > len(kb) {
			continue
		}
		n := copy(kb[:], key)
		for j := 0; j < n; j++ {
			kb[j] = lower(kb[j])
		}
		if ki, ok := st.p.keys[string(kb[:n])]; ok && ki.field != fNone {
			c.set(ki.field, ki.prio, v)
		}
	}
	st.applyKeyed(&c, depth)
}
